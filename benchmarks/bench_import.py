"""Cost of ``import lightvision`` in a fresh interpreter (it must stay light: no torch)."""

import subprocess
import sys

HEAVY = ("torch", "cv2", "tensorly", "sklearn", "scipy")


class ImportSuite:
    repeat = (3, 10, 10.0)
    number = 1
    warmup_time = 0

    def time_import_lightvision(self):
        """Wall time of ``python -c "import lightvision"`` (interpreter start included)."""
        subprocess.run([sys.executable, "-c", "import lightvision"], check=True)

    def track_heavy_modules_imported(self):
        """How many of torch, cv2, tensorly, sklearn, scipy ``import lightvision`` loads."""
        code = f"import sys, lightvision; print(sum(m in sys.modules for m in {HEAVY!r}))"
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True)
        return int(out.stdout)

    track_heavy_modules_imported.unit = "modules"
