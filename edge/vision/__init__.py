"""Face vision: onnxruntime sessions, detectors, alignment, embedder, quality, tracker."""
