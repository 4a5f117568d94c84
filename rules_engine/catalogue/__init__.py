"""Catalogue import: the spreadsheets authorities publish → pack catalogue files and restrictions.

Modules, in pipeline order: `mapping` (the declared layout of a source), `reader` (xlsx / CSV /
TSV → numbered rows under a found header), `cleaning` (cells → typed values, conversions
reported, ambiguity refused), `link` (rows without codes → product codes), `restrictions_parser`
(限定支付范围 texts → conditions), `importer` (the whole run), `writer` (deterministic files,
atomic writes), `report` (JSON / Markdown). The command is `rules-engine catalogue import`.
"""
