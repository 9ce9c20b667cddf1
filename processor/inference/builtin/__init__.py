"""The bundled detectors: faces (CenterFace), licence plates (Haar cascade), persons and vehicles (NanoDet),
persons as a mask (MediaPipe selfie segmentation)."""
