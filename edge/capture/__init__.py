"""Frame capture: `FrameSource` implementations and the latest-frame reader thread.

`source.py` holds the protocol and the frame type, `opencv.py` the OpenCV device/URL/file and
image-folder sources, `synthetic.py` the animated demo scene, `reader.py` the reader thread that
keeps only the newest frame and reconnects with backoff. `thermal.py` belongs to screening.
"""
