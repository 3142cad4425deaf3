"""Test-wide setup: Qt draws offscreen (no display needed); set before anything imports Qt."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# the cache folder (common/run_folder.py CacheFolder): one of the session's own, never ./runs/.cache
if "FRELON_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile
    os.environ["FRELON_CACHE"] = tempfile.mkdtemp(prefix="frelon-test-cache-")
    atexit.register(shutil.rmtree, os.environ["FRELON_CACHE"], True)
