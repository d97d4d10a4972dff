"""Per-session state: the model in use and one design store per model, all in ``st.session_state``.

Keeping a store per model means switching models never mixes designs, and switching back finds
the earlier ones again.
"""
from __future__ import annotations

import logging

import streamlit as st

from clothinggan import drafts, hub, paths, settings
from clothinggan.errors import ClothingGANError
from clothinggan.store import LatentStore, store_for
from clothinggan.ui import resources
from clothinggan.ui.resources import default_spec

log = logging.getLogger("clothinggan.ui")

MODEL_KEY = "model_spec"
STORES_KEY = "stores"
MODEL_NAMES_KEY = "model_names"
FLASH_KEY = "flash"
GENERATED_KEY = "generated"  # the Generate page's current grid of designs
PSI_KEY = "last_psi"  # the Generate page's variety (ψ), kept after that page's widgets are gone
DEFAULT_PSI = 0.7
FIRST_SEEDS = "0-7"  # the garments a first visit to Generate lands on (the server warms them up)
SESSION_PARAM = "s"  # the page address's session token: a reload finds this session's designs again
TOKEN_KEY = "session_token"
BACKED_UP_KEY = "backed_up"  # drafts.fingerprint of what was last written
SYNCED_KEY = "draft_synced"  # drafts.Synced: the draft's revision and designs this tab last read or wrote
BACKUP_FAILED_KEY = "backup_failed"
AUTHOR_KEY = "author"  # the sidebar's "Your name" box: who saves to the team library
AUTHOR_PARAM = "author"  # ...also kept in the page address, so a reload or a bookmark remembers it
MODEL_PARAM = "model"  # the session's model when it is not the built-in one: a reload stays on it


def model_spec() -> str:
    """The spec ("default", a path, a zoo name) of the model this session uses."""
    if MODEL_KEY not in st.session_state:
        st.session_state[MODEL_KEY] = default_spec()
    return st.session_state[MODEL_KEY]


def set_model_spec(spec: str) -> None:
    st.session_state[MODEL_KEY] = spec


def stores() -> dict[str, LatentStore]:
    if STORES_KEY not in st.session_state:
        st.session_state[STORES_KEY] = {}
    return st.session_state[STORES_KEY]


def current_store(G) -> LatentStore:
    """The session's store of G's designs (created empty on first use)."""
    names = st.session_state.setdefault(MODEL_NAMES_KEY, {})
    names[G.fingerprint] = G.name
    new = G.fingerprint not in stores()
    store = store_for(stores(), G.fingerprint)
    starter = settings.starter_seeds()
    if new and starter:
        from clothinggan.designs import designs_from_seeds
        from clothinggan.seeds import parse_seeds

        store.merge(designs_from_seeds(G, parse_seeds(starter, max_count=32), 0.7))
    return store


def other_stores(G) -> list[tuple[str, int]]:
    """(model name, number of designs) of the non-empty stores of other models."""
    names = st.session_state.get(MODEL_NAMES_KEY, {})
    return [(names.get(mid, mid[:12]), len(s)) for mid, s in stores().items()
            if mid != G.fingerprint and len(s)]


def flash(message: str, kind: str = "success") -> None:
    """A message to show once on the next run (after a rerun that would otherwise swallow it)."""
    st.session_state[FLASH_KEY] = (kind, message)


def show_flash() -> None:
    item = st.session_state.pop(FLASH_KEY, None)
    if item:
        kind, message = item
        {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}.get(kind, st.info)(message)


def author() -> str | None:
    """The name this browser saves team-library designs under (None until one is typed)."""
    name = str(st.session_state.get(AUTHOR_KEY) or "").strip()
    return name or None


def restore_author() -> None:
    """Before the name box is drawn: take the name from the page address on a new session, and
    write it back to the address on every run (switching pages clears the address's parameters)."""
    if AUTHOR_KEY not in st.session_state and st.query_params.get(AUTHOR_PARAM):
        st.session_state[AUTHOR_KEY] = st.query_params[AUTHOR_PARAM][:80]
    _keep_param(AUTHOR_PARAM, author())


def last_psi() -> float:
    """The variety (ψ) last used on Generate: designs made from a typed seed elsewhere use it too.

    A widget's own state is dropped whenever its page is not shown, so the value lives under a key
    of its own rather than the Generate slider's.
    """
    return float(st.session_state.get(PSI_KEY, DEFAULT_PSI))


def remember_psi(psi: float) -> None:
    st.session_state[PSI_KEY] = float(psi)


def _keep_param(name: str, value: str | None) -> None:
    """Write a parameter into the page address (switching pages clears them, so on every run)."""
    if value and st.query_params.get(name) != value:
        st.query_params[name] = value
    elif not value and name in st.query_params:
        del st.query_params[name]


def link_params() -> dict[str, str]:
    """The address parameters a link to another page keeps, so "Open in new tab" finds this session."""
    params = {SESSION_PARAM: st.session_state.get(TOKEN_KEY), AUTHOR_PARAM: author(), MODEL_PARAM: _model_param()}
    return {name: value for name, value in params.items() if value}


def _model_param() -> str | None:
    spec = model_spec()
    return None if spec == default_spec() else spec


def restore_model() -> None:
    """Before the model loads: a new session takes the model its page address names (the one the
    session used before a reload), checked as the sidebar's "File path" box checks a typed path;
    then the address names the session's model on every run.

    A model that is gone or broken is then the sidebar's usual "could not be loaded" with a way back.
    """
    wanted = st.query_params.get(MODEL_PARAM)
    if MODEL_KEY not in st.session_state and wanted and wanted != default_spec():
        try:
            set_model_spec(wanted if hub.is_hub_spec(wanted) else str(paths.checked_model_path(wanted)))
        except ClothingGANError as exc:
            flash(f"The model named in this page's address cannot be used here, so the built-in one is: {exc}",
                  "warning")
    _keep_param(MODEL_PARAM, _model_param())


def restore_session() -> None:
    """On a session's first run: take its token from the address and bring back that draft's designs."""
    if TOKEN_KEY in st.session_state:
        _keep_param(SESSION_PARAM, st.session_state[TOKEN_KEY])
        return
    token = st.query_params.get(SESSION_PARAM)
    st.session_state[TOKEN_KEY] = token if drafts.is_token(token) else drafts.new_token()
    _keep_param(SESSION_PARAM, st.session_state[TOKEN_KEY])
    if not drafts.is_token(token):
        return
    try:
        kept = resources.design_library(resources.library_url()).load_draft(token)
        restored = drafts.decode_session(kept.data) if kept else {}
    except ClothingGANError as exc:
        # Unknown revision: the next backup merges with whatever is kept instead of replacing it.
        log.warning("could not restore session draft: %s", exc)
        flash(f"Your designs from before the reload could not be brought back just now: {exc}", "warning")
        return
    for model_id, store in restored.items():
        store_for(stores(), model_id).merge(store)  # an empty store too: its model is not new to this session
    st.session_state[SYNCED_KEY] = drafts.Synced(kept.revision if kept else None, drafts.snapshot(restored))
    st.session_state[BACKED_UP_KEY] = drafts.fingerprint(stores())
    count = sum(len(s) for s in restored.values())
    if count:
        flash(f"Welcome back: your {count} design{'s' if count != 1 else ''} from before are here.", "info")


def backup_session() -> None:
    """After a run: if the designs changed, write this session's draft (one short query per change).

    If another tab of the session wrote meanwhile, its changes are merged in and this tab runs
    again to show them.
    """
    now = drafts.fingerprint(stores())
    if now == st.session_state.get(BACKED_UP_KEY, ()):
        return
    synced: drafts.Synced = st.session_state.get(SYNCED_KEY) or drafts.Synced()
    if synced.revision is None and not drafts.has_designs(stores()):
        return  # nothing kept and nothing to keep: a visit that made nothing writes nothing
    try:
        result = drafts.sync(resources.design_library(resources.library_url()), st.session_state[TOKEN_KEY],
                             stores(), synced)
    except ClothingGANError as exc:
        log.warning("could not keep session draft: %s", exc)
        if not st.session_state.get(BACKUP_FAILED_KEY):
            st.session_state[BACKUP_FAILED_KEY] = True
            st.toast("Your designs could not be backed up on the server just now, so a reload would lose them; "
                     "they are safe in this tab. Export them from Library to be sure.", icon=":material/cloud_off:")
        return
    st.session_state[SYNCED_KEY] = result.synced
    st.session_state.pop(BACKUP_FAILED_KEY, None)
    if result.merged is None:
        st.session_state[BACKED_UP_KEY] = now
        return
    merged_now = drafts.fingerprint(result.merged)
    st.session_state[BACKED_UP_KEY] = merged_now
    if merged_now == now:
        return  # the other tab's changes were the same as this tab's
    stores().clear()
    stores().update(result.merged)
    flash(f"This session is open in another tab too; its changes are merged in here ({_changes(result)}).", "info")
    st.rerun()  # the page was drawn before the merge: show the merged designs


def _changes(result: drafts.SyncResult) -> str:
    parts = [f"{n} design{'s' if n != 1 else ''} {what}" for n, what in
             ((result.added, "added"), (result.removed, "deleted"), (result.renamed, "renamed")) if n]
    return ", ".join(parts) or "designs moved"
