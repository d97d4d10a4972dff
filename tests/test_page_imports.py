"""A page's first visit imports only what it needs: the PCA explorer's charts are plain plotly
graph objects, so its first visit does not pay for importing pandas (0.5-0.8 s on two cores)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VISIT = r"""
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("streamlit_app.py", default_timeout=120).run()
at.switch_page("app_pages/pca_explorer.py").run()
print("JSON" + json.dumps({"charts": len(at.get("plotly_chart")), "exceptions": len(at.exception),
                           "pandas": "pandas" in sys.modules}))
"""


def test_the_pca_explorer_draws_its_charts_without_importing_pandas(tmp_path) -> None:
    env = {**os.environ, "CLOTHINGGAN_CACHE": str(tmp_path / "cache"),
           "CLOTHINGGAN_LIBRARY_URL": f"sqlite:///{tmp_path / 'library.sqlite'}"}
    env.pop("CLOTHINGGAN_DEFAULT_MODEL", None)  # the embedded model: it ships its components
    proc = subprocess.run([sys.executable, "-c", VISIT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("JSON")), None)
    assert line, proc.stderr[-2000:]
    seen = json.loads(line[4:])
    assert seen == {"charts": 2, "exceptions": 0, "pandas": False}
