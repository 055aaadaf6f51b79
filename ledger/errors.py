"""The root of every verification failure raised by the pure core.

Each module defines its own precise subclasses next to the code that raises them
(``ledger.merkle`` for proofs, ``ledger.message`` for COSE messages, ``ledger.note``
for checkpoints), so that callers can catch one family or one exact failure.
"""


class VerificationError(Exception):
    """Something offered as evidence does not check out; the message says exactly what."""
