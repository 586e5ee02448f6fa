"""How good are the faces, NumPy only (OpenCV's detector aside): `swd.py` (sliced Wasserstein
distance), `face_rate.py` (the fraction a face detector finds), `color.py` (colour the generator
invented), `memorization.py` (nearest training face), `spectrum.py` (fine detail: the radial power
spectrum), `realism.py` (each measure beside its real-against-real floor).
"""
