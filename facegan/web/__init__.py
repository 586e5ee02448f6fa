"""Faces without a server: the browser's seed -> z (seed_to_z.js, the twin of
facegan/client/philox.py); the static web demo is built from here."""
