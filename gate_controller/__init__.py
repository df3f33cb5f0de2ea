"""Gate controller: owns the e-gate hardware and its safety rules, in its own process."""
