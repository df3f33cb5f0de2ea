"""Decisions: the per-frame pipeline, the lane state machine, decision events and the gate link."""
