"""Wire schemas shared by both ends of a link: `gate/1` (daemon <-> gate controller) and
`counts/1` + `uplink/1` (box -> central). Each side imports these, never the other side."""
