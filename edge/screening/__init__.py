"""Public-health screening: thermal fever screening (triage only) and close-quarters counts.

`calibration` reads and writes thermal-calibration/1 JSON, `thermal` estimates and fuses
inner-canthus temperatures, `synth` renders visible + thermal scenes with ground truth,
`evaluate` scores a synthetic set, `close_quarters` estimates distances between people, `cli`
is `python -m edge thermal`. No reading is ever tied to an identity.
"""
