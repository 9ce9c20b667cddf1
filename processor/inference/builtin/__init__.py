"""The bundled detectors: faces (CenterFace), licence plates (Haar cascade), persons (MediaPipe selfie segmentation)."""
