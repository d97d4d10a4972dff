"""The Streamlit layer of clothinggan: cached resources, the session's design stores and shared widgets.

This sub-package is the only part of clothinggan that imports streamlit; pages in ``app_pages/`` use it.
"""
