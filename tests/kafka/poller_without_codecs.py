"""The standalone poller without the zstd and lz4 codecs: a batch it cannot decode, on purpose.

kafka-python decodes zstd/lz4 only when their libraries are importable (it checks `kafka.codec`
at each batch). This process hides both, so a zstd or lz4 batch is exactly what a poller without
the codec meets. Creating the file named by WAREHOUSE_TEST_FIX_ZSTD gives zstd back (the
operator "installed the library"); lz4 stays missing, for a batch that can only be skipped.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import kafka.codec as codec

_zstd = codec.zstd
codec.zstd = None
codec.lz4 = None
codec.lz4f = None
codec.lz4framed = None


def _fix_when_asked() -> None:
    path = os.environ["WAREHOUSE_TEST_FIX_ZSTD"]
    while not os.path.exists(path):
        time.sleep(0.2)
    codec.zstd = _zstd


threading.Thread(target=_fix_when_asked, daemon=True).start()

from functions.local_app.poller.__main__ import main  # noqa: E402  (after the codecs are hidden)

sys.exit(main())
