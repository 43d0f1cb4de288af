"""How quantized weight codes become ROM bits and hardware terms.

* :class:`CodeFormat`: one code as a ROM field (up to ``digits`` canonical-signed-digit fields
  ``(nonzero, negative, shift)``, or a signed integer for the multiplier baseline) and the term
  ``code * v`` it stands for.
* :class:`StreamLayout`: the ROM of a folded phase. Word ``i`` holds step ``i`` of the phase: for
  every lane slot an entry ``(code, value index)`` plus a flag marking a group's last step. With
  zero skipping each slot streams only its row's nonzero entries (idle steps hold code 0); dense
  layouts stream every column and share one value index between the slots.
* :func:`token_table`: the column of ``W_ih`` a token selects, per group and slot, padded with
  zero rows up to every index the token field can carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Const, Mux, Value, signed

from golden import Fixed, QuantMatrix, bits_signed, csd_digits

from .arith import tree_sum
from .timing import PhasePlan

__all__ = ["CodeFormat", "MatrixCodes", "StreamLayout", "slot_codes", "token_table",
           "token_width"]


@dataclass(frozen=True)
class CodeFormat:
    """ROM encoding of weight codes (see the module docstring)."""

    use_mul: bool
    digits: int
    shift_bits: int
    code_width: int

    @classmethod
    def of(cls, codes, *, use_mul: bool) -> CodeFormat:
        uniq = [int(v) for v in np.unique(np.asarray(codes))] + [0]
        digs = [csd_digits(v) for v in uniq]
        max_shift = max((k for d in digs for _, k in d), default=0)
        return cls(use_mul, max(1, max(len(d) for d in digs)), max_shift.bit_length(),
                   bits_signed(min(uniq), max(uniq)))

    @property
    def width(self) -> int:
        return self.code_width if self.use_mul else self.digits * (2 + self.shift_bits)

    def word(self, code: int) -> int:
        """The ROM bits of one code."""
        if self.use_mul:
            return int(code) & ((1 << self.width) - 1)
        w, step = 0, 2 + self.shift_bits
        for d, (s, k) in enumerate(csd_digits(int(code))):
            w |= (1 | ((s < 0) << 1) | (k << 2)) << (d * step)
        return w

    def term(self, word: Value, v: Value) -> Value:
        """``code * v`` from a ROM field (a runtime value)."""
        if self.use_mul:
            return v * word.as_signed()  # mult baseline only
        step, terms = 2 + self.shift_bits, []
        for d in range(self.digits):
            base = d * step
            sh = (v << word[base + 2: base + step]) if self.shift_bits else v
            terms.append(Mux(word[base], Mux(word[base + 1], -sh, sh), 0))
        return tree_sum(terms)

    def const_terms(self, code: int, v: Value) -> list:
        """``code * v`` for a constant code as signed terms ``(sign, value)``; [] when zero."""
        if code == 0:
            return []
        if self.use_mul:  # mult baseline only: one product, its sign taken out
            return [(1 if code > 0 else -1, v * Const(abs(int(code))))]
        return [(s, v << k) for s, k in csd_digits(int(code))]


class MatrixCodes:
    """One quantized matrix as seen by a weighted-sum engine: its :class:`CodeFormat` and the
    accumulator shape that holds ``codes @ v`` for every ``v`` in ``vfmt`` (exact bound)."""

    def __init__(self, q: QuantMatrix, vfmt: Fixed, *, use_mul: bool):
        self.q, self.use_mul = q, use_mul
        self.fmt = CodeFormat.of(q.codes, use_mul=use_mul)
        vmax = max(-vfmt.min_int, vfmt.max_int)
        bound = int(np.abs(q.codes).sum(axis=1).max(initial=0)) * vmax
        self.acc_shape = signed(bits_signed(-bound, bound))
        self.word_width = self.fmt.width

    def word(self, code: int) -> int:
        return self.fmt.word(code)

    def term(self, word: Value, v: Value) -> Value:
        return self.fmt.term(word, v)


class StreamLayout:
    """The weight ROM of one folded phase (see the module docstring).

    Parameters
    ----------
    plan : hw.timing.PhasePlan
    mats : list of ndarray
        The code matrices the phase streams, in value-source order (``W_ih`` then ``W_hh``).
    fmt : CodeFormat
        Encoding of every matrix's codes (one format for the phase).
    """

    def __init__(self, plan: PhasePlan, mats: list[np.ndarray], fmt: CodeFormat):
        self.plan, self.mats, self.fmt = plan, [np.asarray(m) for m in mats], fmt
        self.shared = not plan.skip
        self.col_bits = max(1, (max(m.shape[1] for m in self.mats) - 1).bit_length())
        self.sel_bits = 1 if len(self.mats) > 1 else 0
        self.index_bits = self.col_bits + self.sel_bits
        self.entry_bits = fmt.width + (0 if self.shared else self.index_bits)
        self.width = plan.slots * self.entry_bits + (self.index_bits if self.shared else 0) + 1

    def _entries(self, row: int | None) -> list[tuple[int, int, int]]:
        """(source, column, code) of one row, in stream order."""
        if row is None:
            return []
        out = []
        for k, m in enumerate(self.mats):
            for j, code in enumerate(m[row].tolist()):
                if code or not self.plan.skip:
                    out.append((k, j, int(code)))
        return out

    def _index(self, source: int, col: int) -> int:
        return col | (source << self.col_bits)

    def words(self) -> list[int]:
        """ROM contents: ``sum(plan.steps)`` words."""
        out = []
        dense = [(k, j, 0) for k, m in enumerate(self.mats) for j in range(m.shape[1])]
        for g, steps in enumerate(self.plan.steps):
            rows = [self._entries(self.plan.row(g, s)) for s in range(self.plan.slots)]
            for i in range(steps):
                w = 0
                for s, ents in enumerate(rows):
                    src, col, code = ents[i] if i < len(ents) else (0, 0, 0)
                    e = self.fmt.word(code)
                    if not self.shared:
                        e |= self._index(src, col) << self.fmt.width
                    w |= e << (s * self.entry_bits)
                if self.shared:
                    src, col, _ = dense[i]
                    w |= self._index(src, col) << (self.plan.slots * self.entry_bits)
                out.append(w | (int(i == steps - 1) << (self.width - 1)))
        return out

    def fields(self, word: Value) -> tuple[list, list, Value]:
        """Slice a ROM word: ``(codes per slot, value index per slot, last-step flag)``."""
        codes, indices = [], []
        shared = word[self.plan.slots * self.entry_bits:][: self.index_bits]
        for s in range(self.plan.slots):
            e = word[s * self.entry_bits:][: self.entry_bits]
            codes.append(e[: self.fmt.width])
            indices.append(shared if self.shared else e[self.fmt.width:])
        return codes, indices, word[self.width - 1]


def token_width(codes: np.ndarray) -> int:
    """Bits of a signed code of the token table (the code is the token's weighted sum)."""
    codes = np.asarray(codes)
    return bits_signed(min(0, int(codes.min(initial=0))), max(0, int(codes.max(initial=0))))


def token_table(plan: PhasePlan, codes: np.ndarray, token_bits: int) -> tuple[list[int], int]:
    """Words of the token table (address ``group << token_bits | token``) and the code width.

    Word ``(g, t)`` holds, for every slot, the signed code ``W_ih[row, t]``; tokens
    ``t >= input_size`` select zeros (the step still runs: biases and recurrence).
    """
    codes, width = np.asarray(codes), token_width(codes)
    words = []
    for g in range(len(plan.groups)):
        for t in range(1 << token_bits):
            w = 0
            for s in range(plan.slots):
                row = plan.row(g, s)
                if row is not None and t < codes.shape[1]:
                    w |= (int(codes[row, t]) & ((1 << width) - 1)) << (s * width)
            words.append(w)
    return words, width


def slot_codes(word, width: int) -> list:
    """A word of :func:`token_table` (an Amaranth value) split into its slots' signed codes of
    ``width`` bits, slot 0 in the low bits."""
    return [word[j * width:(j + 1) * width].as_signed() for j in range(len(word) // width)]
