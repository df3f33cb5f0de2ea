"""Evaluation: tools that measure the product through its own code paths (vision, consent store,
gallery, kiosk enrolment), for engineers and evaluators. Nothing here runs at the gate."""
