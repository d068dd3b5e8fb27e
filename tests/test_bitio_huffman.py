"""Property tests: bit I/O and Huffman coding round-trip; decoders stop cleanly on bad input."""
import numpy as np
from hypothesis import given, strategies as st

from pacodec.bitio import BitReader, BitWriter, get_bits, put_bits, reader_state, writer_state
from pacodec.errors import FormatError
from pacodec.huffman import code_lengths, get_symbol, put_symbol, read_unit, unit_bits, write_unit
from pacodec.tables import (PARTNER_CLASSES, BOOK_REGIONS, ESC_BOOK, MAX_QUANT, N_MS_ROWS, PAIR_ROWS_PER_REGION,
                            ROW_MS, ROW_PAIR, ROW_SF, ROW_SPECTRAL, SPECTRAL_BOOKS,
                            TUPLE_CONTEXTS, book_row, book_row_v, context_params, load_codebooks,
                            ms_row, n_rows, pair_row, sf_row, spectral_row, spectral_row_v,
                            tuple_context)

BOOKS = load_codebooks()

fields = st.lists(st.integers(1, 48).flatmap(lambda n: st.tuples(st.integers(0, (1 << n) - 1),
                                                                  st.just(n))), max_size=60)


@given(fields)
def test_bits_written_are_the_bits_read(items):
    w = BitWriter(1)
    for v, n in items:
        w.write(v, n)
    r = BitReader(w.getvalue())
    assert [r.read(n) for _, n in items] == [v for v, _ in items]


@given(st.binary(max_size=8), st.integers(1, 32))
def test_reading_past_the_end_flags_an_error_instead_of_reading_outside(data, n):
    buf = np.frombuffer(data, np.uint8)
    st_ = reader_state(len(buf))
    total = 0
    while st_[1] == 0:
        get_bits(buf, st_, n)
        total += n
    assert total > len(data) * 8 - n and st_[0] <= len(data) * 8


def test_writer_flags_overflow_instead_of_writing_outside():
    buf = np.zeros(2, np.uint8)
    s = writer_state()
    put_bits(buf, s, 0xFFFF, 16)
    put_bits(buf, s, 1, 1)
    assert s[1] == 1 and s[0] == 16


def test_python_reader_raises_format_error_when_truncated():
    r = BitReader(b"\x01")
    r.read(8)
    try:
        r.read(1)
    except FormatError:
        pass
    else:
        raise AssertionError("no error")


@given(st.lists(st.integers(0, 120), max_size=200))
def test_scalefactor_symbols_round_trip(symbols):
    buf = np.zeros(4096, np.uint8)
    w = writer_state()
    for s in symbols:
        put_symbol(buf, w, BOOKS.codes, BOOKS.lengths, ROW_SF, s)
    r = reader_state(len(buf))
    got = [get_symbol(buf, r, BOOKS.count, BOOKS.first, BOOKS.offset, BOOKS.symbols, BOOKS.lut,
                      ROW_SF)
           for _ in symbols]
    assert got == symbols and r[1] == 0


@given(st.binary(max_size=12), st.integers(0, 95), st.integers(0, 10 ** 6),
       st.sampled_from([3, 4, 5, 6, 7]))
def test_the_first_look_up_decodes_exactly_as_bit_by_bit(data, limit, row, version):
    """get_symbol with its look-up table returns the symbol, position and error flag the
    canonical bit-by-bit decode (a table of zeros: every look-up misses) gives, for every row,
    start bit and limit, valid codes, invalid ones and truncation alike."""
    books = load_codebooks(version=version)
    row %= books.count.shape[0]
    buf = np.frombuffer(data, np.uint8)
    limit = min(limit, 8 * len(buf))
    none = np.zeros_like(books.lut)
    for start in range(0, min(limit, 16) + 1):
        a = np.array([start, 0, limit], np.int64)
        b = a.copy()
        for _ in range(4):
            sa = get_symbol(buf, a, books.count, books.first, books.offset, books.symbols,
                            books.lut, row)
            sb = get_symbol(buf, b, books.count, books.first, books.offset, books.symbols, none,
                            row)
            assert sa == sb and list(a) == list(b)


def test_the_look_up_table_holds_every_short_code():
    """Every code of at most LUT_BITS bits has its table entries (the table is not just empty)."""
    from pacodec.tables import LUT_BITS
    for r in range(BOOKS.count.shape[0]):
        for sym, n in enumerate(BOOKS.lengths[r]):
            if 0 < n <= LUT_BITS:
                p = int(BOOKS.codes[r, sym]) << (LUT_BITS - n)
                assert BOOKS.lut[r, p] == (sym << 5) | n


def _unit_values(book):
    dim, lav = SPECTRAL_BOOKS[book]
    mag = st.integers(0, MAX_QUANT) if book == ESC_BOOK else st.integers(0, lav)
    return st.lists(st.tuples(mag, st.booleans()), min_size=1, max_size=48).map(
        lambda vs: np.array([-m if s else m for m, s in vs], dtype=np.int64))


@given(st.sampled_from(sorted(SPECTRAL_BOOKS)).flatmap(lambda b: st.tuples(st.just(b), _unit_values(b))),
       st.sampled_from([0, 1, 2]), st.integers(0, 2 ** 32))
def test_spectral_units_round_trip_in_every_book(case, pm, seed):
    """Every book and partner mode (version 7's rows by the partner's values, FORMAT.md §7.3)."""
    book, q = case
    pq = np.random.default_rng(seed).integers(-6, 7, len(q))
    bits = unit_bits(q, 0, len(q), book, BOOKS.lengths, pq, pm)
    assert bits > 0
    buf = np.zeros(bits // 8 + 8, np.uint8)
    w = writer_state()
    write_unit(buf, w, q, 0, len(q), book, BOOKS.codes, BOOKS.lengths, pq, pm)
    assert w[0] == bits and w[1] == 0
    out = np.zeros(len(q), np.int64)
    r = reader_state(len(buf))
    read_unit(buf, r, out, 0, len(q), book, BOOKS.ctx, BOOKS.count, BOOKS.first, BOOKS.offset, BOOKS.symbols,
              BOOKS.lut, pq, pm)
    assert r[1] == 0
    np.testing.assert_array_equal(out, q)


def test_a_book_refuses_values_it_cannot_code():
    q = np.array([0, 2, 0, 0], dtype=np.int64)
    assert unit_bits(q, 0, 4, 1, BOOKS.lengths, q, 0) == -1
    big = np.array([MAX_QUANT + 1, 0])
    assert unit_bits(big, 0, 2, ESC_BOOK, BOOKS.lengths, big, 0) == -1


@given(st.binary(min_size=0, max_size=64), st.sampled_from(sorted(SPECTRAL_BOOKS)))
def test_decoding_random_bytes_never_reads_outside_or_exceeds_limits(data, book):
    buf = np.frombuffer(data, np.uint8)
    out = np.zeros(32, np.int64)
    r = reader_state(len(buf))
    read_unit(buf, r, out, 0, 32, book, BOOKS.ctx, BOOKS.count, BOOKS.first, BOOKS.offset, BOOKS.symbols,
              BOOKS.lut, np.arange(32) % 5, 2)
    assert r[0] <= len(data) * 8
    assert np.abs(out).max(initial=0) <= MAX_QUANT


def _read_unit_reference(buf, st_, q, start, end, book, books, pq, pm):
    """read_unit as first written (one value at a time, digits by division, a get_bits call per
    sign bit): the kernel must give the same values, position and error flag on any input."""
    from pacodec.huffman import BOOK_DIM, BOOK_LAV, ESC_K, ESC_MAX_PREFIX
    from pacodec.tables import ESC_VALUE
    gb = get_bits.py_func if hasattr(get_bits, "py_func") else get_bits
    gs = get_symbol.py_func if hasattr(get_symbol, "py_func") else get_symbol
    dim, base = int(BOOK_DIM[book]), int(BOOK_LAV[book]) + 1
    none = np.zeros_like(books.lut)
    prev, i = -1, start
    while i < end:
        if prev >= 0:
            prev = sum(abs(int(q[i - dim + j])) for j in range(dim) if i - dim + j < end)
        pc = pm                       # FORMAT.md §7.3's partner class, as the text writes it
        if pm == 2:
            s = sum(abs(int(pq[i + j])) for j in range(dim) if i + j < end)
            pc = 2 if s == 0 else 3 if s == 1 else 4 if s <= 3 else 5
        row = spectral_row_v(books.ctx, book, tuple_context(prev), pc)
        prev = 0
        sym = int(gs(buf, st_, books.count, books.first, books.offset, books.symbols, none, row))
        if st_[1] != 0:
            return
        for j in range(dim - 1, -1, -1):
            if i + j < end:
                q[i + j] = sym % base
            sym //= base
        for j in range(dim):
            if i + j < end and q[i + j] != 0 and gb(buf, st_, 1):
                q[i + j] = -q[i + j]
        if book == ESC_BOOK:
            for j in range(dim):
                if i + j < end and abs(q[i + j]) == ESC_VALUE:
                    nz = 0
                    while gb(buf, st_, 1) == 0:
                        if st_[1] != 0:
                            return
                        nz += 1
                        if nz > ESC_MAX_PREFIX:
                            st_[1] = 1
                            return
                    m = (1 << (nz + ESC_K)) | int(gb(buf, st_, nz + ESC_K))
                    v = m - (1 << ESC_K) + ESC_VALUE
                    if v > MAX_QUANT:
                        st_[1] = 1
                        return
                    q[i + j] = -v if q[i + j] < 0 else v
        i += dim


@given(st.binary(max_size=40), st.sampled_from(sorted(SPECTRAL_BOOKS)), st.integers(1, 40),
       st.integers(0, 320), st.sampled_from([0, 1, 2]))
def test_read_unit_equals_the_value_by_value_reference_on_any_bytes(data, book, length, limit, pm):
    buf = np.frombuffer(data, np.uint8)
    limit = min(limit, 8 * len(buf))
    a, b = np.zeros(length, np.int64), np.zeros(length, np.int64)
    pq = (np.arange(length) * 7) % 5 - 2
    sa, sb = np.array([0, 0, limit], np.int64), np.array([0, 0, limit], np.int64)
    read_unit(buf, sa, a, 0, length, book, BOOKS.ctx, BOOKS.count, BOOKS.first, BOOKS.offset,
              BOOKS.symbols, BOOKS.lut, pq, pm)
    _read_unit_reference(buf, sb, b, 0, length, book, BOOKS, pq, pm)
    assert list(sa) == list(sb)
    np.testing.assert_array_equal(a, b)


@given(st.lists(st.integers(0, 10 ** 6), min_size=2, max_size=300))
def test_code_lengths_form_a_complete_prefix_code_within_the_limit(counts):
    lengths = code_lengths(counts, maxlen=16)
    assert max(lengths) <= 16
    assert abs(sum(2.0 ** -l for l in lengths) - 1.0) < 1e-9


def test_trained_books_are_complete_prefix_codes():
    for version in (3, 4, 5, 6, 7):
        books = load_codebooks(version=version)
        for row in range(books.lengths.shape[0]):
            ls = books.lengths[row][books.lengths[row] > 0]
            assert abs(sum(2.0 ** -int(l) for l in ls) - 1.0) < 1e-9
        assert books.lengths.shape[0] == n_rows(version)
    assert ROW_SPECTRAL + 6 * TUPLE_CONTEXTS * PARTNER_CLASSES == ROW_PAIR
    assert ROW_PAIR + BOOK_REGIONS * PAIR_ROWS_PER_REGION + N_MS_ROWS == BOOKS.lengths.shape[0]


def test_code_contexts_map_onto_exactly_the_rows_of_the_codebook_file():
    # FORMAT.md §7.2: book-index rows 0..8R-1 by (previous book, band region), scalefactor rows by
    # the classes of (previous coded book, this book), spectral rows by book and tuple context;
    # every row is reachable, none beyond
    rows = {book_row(ctx, b, nb) for nb in range(1, 53) for b in range(nb) for ctx in range(8)}
    assert rows == set(range(ROW_SF))
    assert book_row(7, 0, 52) == 7 and book_row(0, 51, 52) == 56 and book_row(3, 13, 52) == 19
    sf_rows = {sf_row(p, b) for p in range(1, 8) for b in range(1, 8)}
    assert sf_rows == set(range(ROW_SF, ROW_SPECTRAL))
    assert sf_row(7, 7) == ROW_SPECTRAL - 1 and sf_row(1, 2) == ROW_SF
    spec = {spectral_row(b, t, pc) for b in SPECTRAL_BOOKS for t in range(TUPLE_CONTEXTS)
            for pc in range(PARTNER_CLASSES)}
    assert spec == set(range(ROW_SPECTRAL, ROW_PAIR))
    # version 6: book-pair rows by (region, previous book, partner 0..8), M/S-group rows by
    # (group length 1..4, previous flag); each row's alphabet is what its symbols can be
    pairs = {pair_row(ctx, pt, b, nb) for nb in range(1, 53) for b in range(nb)
             for ctx in range(8) for pt in range(9)}
    assert pairs == set(range(ROW_PAIR, ROW_MS))
    assert pair_row(0, 0, 0, 52) == ROW_PAIR and pair_row(7, 8, 51, 52) == ROW_MS - 1
    assert pair_row(3, 5, 13, 52) == ROW_PAIR + 72 * 2 + 9 * 3 + 5
    assert {ms_row(f, n) for f in (0, 1) for n in range(1, 5)} == set(range(ROW_MS, ROW_MS + 8))
    for r in range(ROW_PAIR, ROW_MS):
        assert (BOOKS.lengths[r, :64] > 0).all() and not BOOKS.lengths[r, 64:].any()
    for f in (0, 1):
        for n in range(1, 5):
            ls = BOOKS.lengths[ms_row(f, n)]
            assert (ls[:1 << n] > 0).all() and not ls[1 << n:].any()
    # versions 3..5 have no such rows
    assert all(context_params(v)[4] == context_params(v)[5] == 0 for v in (3, 4, 5))
    assert [int(context_params(v)[6]) for v in (3, 4, 5, 6, 7)] == [1, 1, 1, 1, PARTNER_CLASSES]
    # version 3 (frozen): 4 regions, one row per spectral book
    v3 = context_params(3)
    assert {book_row_v(v3, c, b, nb) for nb in range(1, 53) for b in range(nb)
            for c in range(8)} == set(range(32))
    assert book_row_v(v3, 0, 51, 52) == 24 and book_row_v(v3, 3, 13, 52) == 11
    assert {spectral_row_v(v3, b, t, pc) for b in SPECTRAL_BOOKS for t in range(5)
            for pc in range(6)} == set(range(48, 54))
    # version 7: the partner class is the fastest-moving index of a book's rows; versions 4-6
    # have only class 0 (their rows are version 7's class-0 rows' layout without the others)
    assert spectral_row(1, 0, 0) == ROW_SPECTRAL and spectral_row(1, 0, 5) == ROW_SPECTRAL + 5
    assert spectral_row(2, 1, 3) == ROW_SPECTRAL + 30 + 6 + 3
    v6 = context_params(6)
    assert spectral_row_v(v6, 2, 1, 3) == spectral_row_v(v6, 2, 1, 0) == int(v6[2]) + 5 + 1


def test_a_book_index_row_is_the_row_after_book_0_plus_the_previous_book():
    # allocation.rd_scalefactors looks up each band's rows once, as book_row(0, b, nb), and adds
    # the previous book: that holds for every version's contexts (the row is N_BOOKS * region +
    # previous book, FORMAT.md §7.2)
    for version in (3, 4, 5, 6, 7):
        ctx = context_params(version)
        for nb in range(1, 53):
            for b in range(nb):
                base = book_row_v(ctx, 0, b, nb)
                assert [book_row_v(ctx, p, b, nb) for p in range(8)] == list(range(base, base + 8))


def test_tuple_contexts_follow_the_magnitudes_of_the_tuple_before():
    # FORMAT.md §7.3: first tuple 0; previous sum 0 -> 1, 1 -> 2, 2..3 -> 3, >= 4 -> 4
    assert [tuple_context(s) for s in (-1, 0, 1, 2, 3, 4, 40)] == [0, 1, 2, 3, 3, 4, 4]


def test_put_bits_writes_what_a_bit_by_bit_writer_writes(rng):
    """put_bits gives the bytes of appending the ``n`` low bits of
    each value one bit at a time, MSB first: widths 0..32 at every bit offset, values with bits
    above ``n`` and negative ones; and it flags the write that would not fit."""
    ns = rng.integers(0, 33, 3000)
    values = rng.integers(-2**40, 2**40, 3000)
    bits = "".join(format(int(v) & ((1 << int(n)) - 1), f"0{int(n)}b") if n else ""
                   for v, n in zip(values, ns))
    want = np.frombuffer(int(bits + "0" * (-len(bits) % 8), 2).to_bytes(-(-len(bits) // 8), "big"),
                         dtype=np.uint8)
    for k in (put_bits, put_bits.py_func):
        buf = np.zeros(len(want) + 8, dtype=np.uint8)
        state = writer_state()
        for v, n in zip(values, ns):
            k(buf, state, int(v), int(n))
        assert state[0] == len(bits) and state[1] == 0
        assert np.array_equal(buf[:len(want)], want) and not buf[len(want):].any()
        small = np.zeros(2, dtype=np.uint8)
        state = writer_state()
        k(small, state, 0x7FFF, 15)
        k(small, state, 3, 2)
        assert state[1] == 1 and state[0] == 15 and small.tobytes() == b"\xff\xfe"


def _canonical_reference(lengths):
    """FORMAT.md §7.1's canonical(lengths), as the text writes it, one symbol at a time."""
    order = sorted((l, s) for s, l in enumerate(lengths) if l > 0)
    out, code, prev = {}, 0, order[0][0]
    for n, (l, s) in enumerate(order):
        if n:
            code = (code + 1) << (l - prev)
        out[s] = code
        prev = l
    return out


@given(st.lists(st.lists(st.integers(0, 10 ** 5), min_size=2, max_size=40), min_size=1, max_size=6))
def test_packed_code_arrays_are_section_7_1s_canonical_codes(counts_rows):
    """CodebookSet builds every row's codewords at once (tables._canonical_rows): each equals
    the codeword §7.1's procedure gives, and a canonical decode of it gives the symbol back."""
    from pacodec.tables import CodebookSet
    rows = [code_lengths(c, maxlen=16) for c in counts_rows]
    cs = CodebookSet(rows, BOOKS.ctx)
    for i, lengths in enumerate(rows):
        ref = _canonical_reference(lengths)
        assert {s: int(cs.codes[i, s]) for s in ref} == ref
        for s, code in ref.items():
            n = lengths[s]
            buf = np.zeros(8, np.uint8)
            w = writer_state()
            put_bits(buf, w, code, n)
            r = reader_state(len(buf))
            assert get_symbol(buf, r, cs.count, cs.first, cs.offset, cs.symbols, cs.lut, i) == s
            assert r[0] == n and r[1] == 0
