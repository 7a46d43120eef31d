"""Conformance runs of jamhost's engine against public JAM test data (`jamhost conformance`).

`vectors` runs the accumulate STF vectors (stf/accumulate, w3f GP 0.7.0 and davxy GP 0.7.2
forms); `traces` replays the accumulations of block traces from their GP state key/values.
Each yields one `CaseResult` per case: what differed, empty when the case passed.
"""

from jamhost.engine.conformance.result import CaseResult, summary

__all__ = ["CaseResult", "summary"]
