"""Gateway to the national 医保 platform.

Modules (each added by its owner; this file stays minimal so that adding one touches nothing else):
- `security`: transport authentication and message security plug-ins, chosen per region;
- `config`: the gateway configuration file (gateway.yaml), validated with located problems.
"""
