"""Public-health screening: thermal fever screening (triage only) and close-quarters counts.

`calibration` reads and writes thermal-calibration/1 JSON, `thermal` estimates and fuses
inner-canthus temperatures, `synth` renders visible + thermal scenes with ground truth,
`evaluate` scores a synthetic set, `close_quarters` estimates distances between people, `cli`
is `python -m edge thermal`; `pad` is thermal presentation-attack detection (`pad_synth` its
attack scenes, `pad_eval` / `pad_cli` its evaluation, `attack_scene` attacks in the synthetic
camera). No reading is ever tied to an identity.
"""
