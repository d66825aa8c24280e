"""Events, not frames: tracking, confirmation, zones, events, counts, HA discovery.

One module per concept, each pure (numpy in, records out) except the snapshot store and
the sequence state file, which touch the disk:

- ``tracker``: stable object ids across frames (Kalman + IoU assignment).
- ``zones``: named polygons, per-zone label filters, inertia.
- ``machine``: confirmation (K of N frames, median score >= threshold) and the
  new / update / end event records of DESIGN.md, plus counts per label and zone.
- ``homeassistant``: MQTT discovery payloads.
- ``snapshots``: best snapshot per event under a count and byte budget.
- ``seqstate``: the per-device event sequence number, kept across restarts.
"""
