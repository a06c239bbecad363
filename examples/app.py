"""The search page as a Hugging Face Space (Gradio SDK): this file runs unchanged as a Space's ``app.py``.

Point it at a collection with environment variables (a Space's "Variables"), or run it locally:

    S5VH_INDEX=s5vh-output/video-demo/index python examples/app.py            # a video index folder
    S5VH_MODEL=me/s5vh-fcvid-64 S5VH_FEATURES=me/fcvid-features python examples/app.py   # Hub ids, features only

S5VH_SPLIT picks the feature split (default database); S5VH_DEVICE the device (default: cuda when present).
"""

import os

from s5vh_hf.app.collection import SearchCollection
from s5vh_hf.app.page import build_search_page, launch_options

if os.environ.get("S5VH_FEATURES"):
    collection = SearchCollection.from_features(os.environ["S5VH_MODEL"], os.environ["S5VH_FEATURES"],
                                                split=os.environ.get("S5VH_SPLIT", "database"))  # fmt: skip
else:
    collection = SearchCollection.from_index(os.environ.get("S5VH_INDEX", "index"),
                                             device=os.environ.get("S5VH_DEVICE"))  # fmt: skip
demo = build_search_page(collection)

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=2).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_options(collection),
    )
