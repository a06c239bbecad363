"""The search page: a Gradio app over a video index or a feature collection (``s5vh app``)."""
