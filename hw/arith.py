"""Expression builders for the multiplier-free datapath (elaboration-time helpers).

Each function returns an Amaranth value computing exactly the integer its golden twin computes:
``narrow`` is golden.narrow, ``const_mul`` is ``v * C``, ``shift_add_mul`` is ``a * b``, ``align``
is golden's ``_align``, ``nonlinearity`` is ``Nonlinearity.int_fn``. None of them emits a
multiplier: products are sums of shifted, conditionally selected operands. The ``mult`` baseline
datapath passes ``use_mul=True`` where the same product may be written with ``*``.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib.memory import Memory

from golden import Fixed, Nonlinearity, csd_digits
from golden.nonlin import LUT_RANGE

__all__ = [
    "wire",
    "align",
    "clamp",
    "const_mul",
    "fmt_shape",
    "narrow",
    "nonlinearity",
    "nonlinearity_input",
    "nonlinearity_output",
    "rom",
    "shift_add_mul",
    "tree_sum",
]


def fmt_shape(fmt: Fixed):
    """Amaranth shape of a Fixed format."""
    return signed(fmt.bits) if fmt.signed else unsigned(fmt.bits)


def wire(m: Module, v, name: str = "t") -> Signal:
    """Name an intermediate value: later uses share one net instead of copying the expression."""
    v = Value.cast(v)
    if isinstance(v, Signal):
        return v
    s = Signal(v.shape(), name=name)
    m.d.comb += s.eq(v)
    return s


def rom(m: Module, values: list[int], shape, index: Value) -> Value:
    """``values[index]``, read from a ROM through an asynchronous (combinational) read port.

    ``len(values)`` must cover every value of ``index`` (a power of two for an unsigned index).
    The Verilog is one array with an initial block and one indexed read, so the text, the
    generation time and the Verilated evaluation grow with the table's length. An ``Array`` of
    constants indexed by a signal instead becomes a one-hot case of ``len(values)`` lines of
    ``len(values)`` bits each: 1 MB of Verilog for one 10-bit table (the ``exact``
    nonlinearity's). ``rom_style = "logic"`` keeps it out of block RAM in synthesis, as the
    ``Array`` was (yosys would move a table that a register follows into block RAM).
    """
    mem = Memory(shape=shape, depth=len(values), init=values, attrs={"rom_style": "logic"})
    m.submodules += mem
    port = mem.read_port(domain="comb")
    m.d.comb += port.addr.eq(index)
    return port.data


def tree_sum(terms: list) -> Value:
    """Balanced adder tree (exact: Amaranth widens every addition)."""
    terms = [t for t in terms if t is not None]
    if not terms:
        return Const(0, signed(2))
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def clamp(m: Module, v: Value, lo: int, hi: int, shape) -> Value:
    """Saturate ``v`` to ``[lo, hi]`` and cast to ``shape`` (the range must fit the shape)."""
    v = wire(m, v, "clamp_in")
    vs = v.shape()
    vmin = -(1 << (vs.width - 1)) if vs.signed else 0
    vmax = (1 << (vs.width - 1)) - 1 if vs.signed else (1 << vs.width) - 1
    sat = v if vmin >= lo else Mux(v < lo, lo, v)  # skip comparisons that cannot be true
    sat = sat if vmax <= hi else Mux(v > hi, hi, sat)
    sat = Value.cast(sat)[: shape.width]
    return sat.as_signed() if shape.signed else sat


def narrow(m: Module, v: Value, from_frac: int, fmt: Fixed, *, rounded: bool = False,
           lo: int | None = None, hi: int | None = None) -> Value:
    """Round half up by ``from_frac - fmt.frac`` bits (arithmetic shift), then saturate to the
    format, or to ``[lo, hi]`` within it (golden's ``narrow_clip``, one saturation).

    ``rounded``: ``v`` already holds the rounding half (added with a constant upstream).
    """
    v = Value.cast(v)
    k = from_frac - fmt.frac
    if k > 0:
        v = (v if rounded else v + (1 << (k - 1))) >> k
    elif k < 0:
        v = v << -k
    lo = fmt.min_int if lo is None else max(lo, fmt.min_int)
    hi = fmt.max_int if hi is None else min(hi, fmt.max_int)
    return wire(m, clamp(m, v, lo, hi, fmt_shape(fmt)), "narrow")


def const_mul(m: Module, v: Value, c: int, *, use_mul: bool = False) -> Value:
    """``v * c`` for a constant ``c`` by shifts and adds/subtracts of its CSD digits."""
    v = wire(m, v, "cm_in")
    if use_mul:
        return v * Const(c, signed(max(2, abs(c).bit_length() + 1)))  # mult baseline
    terms = [(v << k) if s > 0 else -(v << k) for s, k in csd_digits(c)]
    return tree_sum(terms) if terms else Const(0, signed(2))


def shift_add_mul(m: Module, a: Value, b: Value, *, use_mul: bool = False) -> Value:
    """``a * b`` with ``b`` unsigned: the sum over the bits of ``b`` of ``a << i`` when set."""
    a, b = wire(m, a, "mul_a"), wire(m, b, "mul_b")
    if use_mul:
        return a * b  # mult baseline only
    assert not b.shape().signed, "the multiplier operand must be unsigned (a gate value)"
    zero = Const(0, a.shape())
    return wire(m, tree_sum([Mux(b[i], a, zero) << i for i in range(b.shape().width)]), "prod")


def align(*terms: tuple[Value, int]) -> tuple[Value, int]:
    """Sum terms at different fractional positions exactly (left shifts only)."""
    frac = max(f for _, f in terms)
    return tree_sum([Value.cast(v) << (frac - f) for v, f in terms]), frac


def nonlinearity(m: Module, nl: Nonlinearity, fn: str, x: Value, fin: Fixed,
                 fout: Fixed) -> Value:
    """Integer ``sigmoid``/``tanh`` (``nl.int_kind``) of ``x`` in ``fin``; result in ``fout``."""
    return nonlinearity_output(m, nl, fn, nonlinearity_input(m, nl, fn, x, fin, fout), fin, fout)


def _nl_range(fn: str, fout: Fixed) -> tuple[int, int]:
    one = 1 << fout.frac
    return (0 if fn == "sigmoid" else -one), one


def nonlinearity_input(m: Module, nl: Nonlinearity, fn: str, x: Value, fin: Fixed,
                       fout: Fixed) -> Value:
    """The first half of :func:`nonlinearity` (a pipeline may register between the halves):
    ``hard``, one added constant (the offset and the rounding half); ``plan``, the segments;
    ``lut``, the table index."""
    x = wire(m, x, "nl_in")
    kind, f = nl.int_kind, fin.frac
    if kind == "lut":
        r = {8: 3, 4: 2}[LUT_RANGE[fn]]
        bits = nl.int_lut_bits
        lo, hi = -(1 << (r + f)), (1 << (r + f)) - 1
        width = r + 1 + f
        u = wire(m, (clamp(m, x, lo, hi, signed(width + 1)) - lo)[:width], "lut_u")
        return (u >> (width - bits) if width >= bits else u << (bits - width))[:bits]
    if kind == "hard":
        yf = f + 2 if fn == "sigmoid" else f
        k = yf - fout.frac
        offset = (2 << f if fn == "sigmoid" else 0) + ((1 << (k - 1)) if k > 0 else 0)
        return wire(m, x + offset if offset else x, f"{fn}_in")
    xs = wire(m, (x << 1) if fn == "tanh" else x, "plan_x")  # plan
    a = wire(m, Mux(xs < 0, -xs, xs), "plan_abs")
    one = 1 << f
    s = Mux(
        a >= 5 * one,
        32 * one,
        Mux((a << 3) >= 19 * one, a + 27 * one,
            Mux(a >= one, (a << 2) + 20 * one, (a << 3) + 16 * one)),
    )
    s = wire(m, s, "plan_s")
    y = Mux(xs < 0, 32 * one - s, s)
    return wire(m, y - (1 << (f + 4)) if fn == "tanh" else y, f"{fn}_in")


def nonlinearity_output(m: Module, nl: Nonlinearity, fn: str, y: Value, fin: Fixed,
                        fout: Fixed) -> Value:
    """The second half of :func:`nonlinearity`: saturate (or look up) ``y``, the value
    :func:`nonlinearity_input` made, into ``fout``."""
    kind = nl.int_kind
    if kind == "lut":
        table = nl.lut_table_int(fn, fout)
        return rom(m, [int(t) for t in table], fmt_shape(fout), y)
    lo, hi = _nl_range(fn, fout)
    if kind == "hard":
        yf = fin.frac + 2 if fn == "sigmoid" else fin.frac
        return wire(m, narrow(m, y, yf, fout, rounded=True, lo=lo, hi=hi), fn)
    yf = fin.frac + 5 - (fn == "tanh")  # plan
    return wire(m, narrow(m, y, yf, fout, lo=lo, hi=hi), fn)
