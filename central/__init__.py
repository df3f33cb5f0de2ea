"""Central systems: collectors that receive k-suppressed counts from many boxes (not on the box)."""
