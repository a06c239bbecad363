"""From video files: decoding, frame encoders, resumable extraction, the video index.

Imports nothing: importing a module of this package loads only what that module needs."""
