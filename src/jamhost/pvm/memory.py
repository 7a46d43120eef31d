"""Paged RAM μ: GP 0.7.2 §4.7 (ram) and §A.4 (memory-access exceptions).

The 32-bit address space is split in pages of Z_P = 4096 octets, each inaccessible, read-only
or writable. Accessible pages are kept in two dicts, page index -> bytearray(4096): `rp` holds
every readable page, `wp` the writable subset (the same bytearray objects). Compiled blocks and
the step interpreter call the module-level `ld_*`/`st_*` helpers with those dicts directly,
which keeps the common case (access inside one mapped page) to a dict lookup and a slice.

Exceptions follow GP §A.4: an access touching an index below 2^16 panics; otherwise the
lowest inaccessible address decides the fault, reported as its page address. Nothing is
written when a store faults. Pages below 2^16 are therefore never mapped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

PAGE_SIZE = 4096
"""Z_P (GP §I.4.4)."""
PAGE_SHIFT = 12
LOW_LIMIT = 1 << 16
"""Indices below 2^16 always panic (GP §A.4)."""
ADDRESS_SPACE = 1 << 32
M32 = 0xFFFFFFFF

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class MemoryAccessError(Exception):
    """Base of the two memory exceptions an instruction can raise."""


class PageFault(MemoryAccessError):
    """ε = F × a: `address` is the page address of the lowest inaccessible index."""

    def __init__(self, address: int) -> None:
        super().__init__(f"page fault at 0x{address:08x}")
        self.address = address


class MemoryPanic(MemoryAccessError):
    """The access touched an index below 2^16: the machine panics (GP §A.4)."""

    def __init__(self, address: int) -> None:
        super().__init__(f"access below 2^16 at 0x{address:08x}")
        self.address = address


class PageTable(dict[int, bytearray]):
    """page index -> content, for the readable (`write=False`) or writable pages of a Memory.

    Mapped pages are allocated on first touch: a miss on the fast path falls to
    `_raise_for`, which asks the table to fault the page in before deciding on an exception.
    """

    __slots__ = ("memory", "write")

    def __init__(self, memory: Memory, write: bool) -> None:
        super().__init__()
        self.memory = memory
        self.write = write

    def fault_in(self, index: int) -> bool:
        return self.memory._materialise(index, self.write)


def _raise_for(table: dict[int, bytearray], address: int, length: int) -> None:
    """Raise the GP §A.4 exception for an access of `length` octets at `address`, if any.

    GP takes the minimum of the inaccessible *indices* (address + i, before reduction mod
    2^32) and reduces that: for an access wrapping past 2^32 the page at the top counts, not
    the low page the wrapped octets land in. That is the first inaccessible octet in order.
    """
    fault_in = getattr(table, "fault_in", None)
    pos, end = address, address + length
    while pos < end:  # page by page over the unreduced indices
        x = pos & M32
        if x < LOW_LIMIT:
            raise MemoryPanic(x)
        index = x >> PAGE_SHIFT
        if index not in table and not (fault_in is not None and fault_in(index)):
            raise PageFault(x & ~(PAGE_SIZE - 1))
        pos = (pos | (PAGE_SIZE - 1)) + 1


def read_bytes(rp: dict[int, bytearray], address: int, length: int) -> bytes:
    """Read `length` octets at `address` (mod 2^32), raising PageFault/MemoryPanic."""
    address &= M32
    if length == 0:
        return b""
    off = address & (PAGE_SIZE - 1)
    if off + length <= PAGE_SIZE and address >= LOW_LIMIT:
        page = rp.get(address >> PAGE_SHIFT)
        if page is not None:
            return bytes(page[off : off + length])
    _raise_for(rp, address, length)
    out = bytearray()
    while length:
        off = address & (PAGE_SIZE - 1)
        n = min(length, PAGE_SIZE - off)
        out += rp[address >> PAGE_SHIFT][off : off + n]
        address = (address + n) & M32
        length -= n
    return bytes(out)


def write_bytes(wp: dict[int, bytearray], address: int, data: bytes | bytearray) -> None:
    """Write `data` at `address` (mod 2^32) into writable pages; nothing is written on a fault."""
    address &= M32
    length = len(data)
    if length == 0:
        return
    off = address & (PAGE_SIZE - 1)
    if off + length <= PAGE_SIZE and address >= LOW_LIMIT:
        page = wp.get(address >> PAGE_SHIFT)
        if page is not None:
            page[off : off + length] = data
            return
    _raise_for(wp, address, length)
    pos = 0
    while pos < length:
        off = address & (PAGE_SIZE - 1)
        n = min(length - pos, PAGE_SIZE - off)
        wp[address >> PAGE_SHIFT][off : off + n] = data[pos : pos + n]
        address = (address + n) & M32
        pos += n


# --- instruction helpers: `a` is already reduced mod 2^32 by the caller -------------------


def ld_u8(rp: dict[int, bytearray], a: int) -> int:
    p = rp.get(a >> 12)
    if p is None or a < LOW_LIMIT:
        return read_bytes(rp, a, 1)[0]
    return p[a & 4095]


def ld_u16(rp: dict[int, bytearray], a: int) -> int:
    o = a & 4095
    if o <= 4094:
        p = rp.get(a >> 12)
        if p is not None and a >= LOW_LIMIT:
            value: int = _U16.unpack_from(p, o)[0]
            return value
    return int.from_bytes(read_bytes(rp, a, 2), "little")


def ld_u32(rp: dict[int, bytearray], a: int) -> int:
    o = a & 4095
    if o <= 4092:
        p = rp.get(a >> 12)
        if p is not None and a >= LOW_LIMIT:
            value: int = _U32.unpack_from(p, o)[0]
            return value
    return int.from_bytes(read_bytes(rp, a, 4), "little")


def ld_u64(rp: dict[int, bytearray], a: int) -> int:
    o = a & 4095
    if o <= 4088:
        p = rp.get(a >> 12)
        if p is not None and a >= LOW_LIMIT:
            value: int = _U64.unpack_from(p, o)[0]
            return value
    return int.from_bytes(read_bytes(rp, a, 8), "little")


def st_u8(wp: dict[int, bytearray], a: int, v: int) -> None:
    p = wp.get(a >> 12)
    if p is None or a < LOW_LIMIT:
        write_bytes(wp, a, bytes([v & 0xFF]))
        return
    p[a & 4095] = v & 0xFF


def st_u16(wp: dict[int, bytearray], a: int, v: int) -> None:
    o = a & 4095
    if o <= 4094:
        p = wp.get(a >> 12)
        if p is not None and a >= LOW_LIMIT:
            _U16.pack_into(p, o, v & 0xFFFF)
            return
    write_bytes(wp, a, (v & 0xFFFF).to_bytes(2, "little"))


def st_u32(wp: dict[int, bytearray], a: int, v: int) -> None:
    o = a & 4095
    if o <= 4092:
        p = wp.get(a >> 12)
        if p is not None and a >= LOW_LIMIT:
            _U32.pack_into(p, o, v & 0xFFFFFFFF)
            return
    write_bytes(wp, a, (v & 0xFFFFFFFF).to_bytes(4, "little"))


def st_u64(wp: dict[int, bytearray], a: int, v: int) -> None:
    o = a & 4095
    if o <= 4088:
        p = wp.get(a >> 12)
        if p is not None and a >= LOW_LIMIT:
            _U64.pack_into(p, o, v & 0xFFFFFFFFFFFFFFFF)
            return
    write_bytes(wp, a, (v & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))


class Memory:
    """RAM μ with per-page access (GP §4.7: μ_V values, μ_A access ∈ {W, R, ∅}).

    `heap_top` is the current break for `sbrk` (None when the program has no standard layout,
    in which case GP §A.5.9 takes h = 0). `heap_limit`, when set, is the highest break sbrk
    may reach: past it sbrk answers 0 and maps nothing, as past the address space (jamhost
    bounds the pages inner machines may take, engine/inner_machines.py).
    """

    __slots__ = ("rp", "wp", "lazy", "heap_top", "heap_limit")

    def __init__(self) -> None:
        self.rp: PageTable = PageTable(self, write=False)
        self.wp: PageTable = PageTable(self, write=True)
        self.lazy: dict[int, bool] = {}
        """Mapped pages not yet allocated (all zero): page index -> writable."""
        self.heap_top: int | None = None
        self.heap_limit: int | None = None

    def _materialise(self, index: int, need_write: bool) -> bool:
        writable = self.lazy.get(index)
        if writable is None:
            return False
        del self.lazy[index]
        page = bytearray(PAGE_SIZE)
        self.rp[index] = page
        if writable:
            self.wp[index] = page
        return writable or not need_write

    # -- layout ---------------------------------------------------------------------------

    def map(self, address: int, length: int, writable: bool) -> None:
        """Make [address, address+length) accessible (whole pages), zero-filled if new."""
        if length <= 0:
            return
        first = address >> PAGE_SHIFT
        last = (address + length - 1) >> PAGE_SHIFT
        if first < LOW_LIMIT >> PAGE_SHIFT:
            raise ValueError("pages below 2^16 are never accessible (GP §A.4)")
        if last >= ADDRESS_SPACE >> PAGE_SHIFT:
            raise ValueError("mapping beyond the 32-bit address space")
        for index in range(first, last + 1):
            page = self.rp.get(index)
            if page is None:
                self.lazy[index] = writable
            elif writable:
                self.wp[index] = page
            else:
                self.wp.pop(index, None)

    def load(self, address: int, data: bytes) -> None:
        """Initialise content regardless of write access (program loading, test vectors)."""
        write_bytes(self.rp, address, data)

    # -- access from the host side ----------------------------------------------------------

    def read(self, address: int, length: int) -> bytes:
        """Read, raising PageFault/MemoryPanic exactly as an instruction would."""
        return read_bytes(self.rp, address, length)

    def write(self, address: int, data: bytes | bytearray) -> None:
        """Write into writable pages, raising PageFault/MemoryPanic; nothing written then."""
        write_bytes(self.wp, address, data)

    def is_readable(self, address: int, length: int) -> bool:
        """N_{address..+length} ⊆ V_μ (GP notation); the empty range is readable."""
        if address + length > ADDRESS_SPACE:
            return False
        try:
            _raise_for(self.rp, address, length) if length else None
        except MemoryAccessError:
            return False
        return True

    def is_writable(self, address: int, length: int) -> bool:
        """N_{address..+length} ⊆ V*_μ."""
        if address + length > ADDRESS_SPACE:
            return False
        try:
            _raise_for(self.wp, address, length) if length else None
        except MemoryAccessError:
            return False
        return True

    def access(self, page_index: int) -> str:
        """'W', 'R' or '' for one page."""
        if page_index in self.wp or self.lazy.get(page_index):
            return "W"
        return "R" if page_index in self.rp or page_index in self.lazy else ""

    # -- sbrk (GP §A.5.9, opcode 101) -------------------------------------------------------

    def sbrk(self, size: int) -> int:
        """Grow the heap by `size` octets, mapping new pages writable; return the old break."""
        top = self.heap_top if self.heap_top is not None else 0
        if size == 0:
            return top
        new_top = top + size
        if new_top > ADDRESS_SPACE or (self.heap_limit is not None and new_top > self.heap_limit):
            return 0
        first = -(-top // PAGE_SIZE)
        last = -(-new_top // PAGE_SIZE)
        for index in range(max(first, LOW_LIMIT >> PAGE_SHIFT), last):
            if index not in self.rp:
                self.lazy[index] = True
        self.heap_top = new_top
        return top

    # -- inspection ---------------------------------------------------------------------

    def pages(self) -> Iterable[tuple[int, bool, bytearray]]:
        """(page address, writable, content) for every accessible page, in address order.

        Pages mapped but never touched are yielded as fresh zero pages (not allocated)."""
        for index in sorted({*self.rp, *self.lazy}):
            page = self.rp.get(index)
            if page is None:
                yield index << PAGE_SHIFT, self.lazy[index], bytearray(PAGE_SIZE)
            else:
                yield index << PAGE_SHIFT, index in self.wp, page

    def nonzero_chunks(self) -> list[tuple[int, bytes]]:
        """Maximal runs of non-zero octets across contiguous pages (test-vector form)."""
        chunks: list[tuple[int, bytes]] = []
        cur_addr = -1
        cur = bytearray()
        for index in sorted(self.rp):
            base, content = index << PAGE_SHIFT, self.rp[index]
            if not any(content):
                continue
            for off, byte in enumerate(content):
                addr = base + off
                if byte:
                    if cur and cur_addr + len(cur) == addr:
                        cur.append(byte)
                    else:
                        if cur:
                            chunks.append((cur_addr, bytes(cur)))
                        cur_addr, cur = addr, bytearray([byte])
        if cur:
            chunks.append((cur_addr, bytes(cur)))
        return chunks

    def copy(self) -> Memory:
        other = Memory()
        for index, page in self.rp.items():
            clone = bytearray(page)
            other.rp[index] = clone
            if index in self.wp:
                other.wp[index] = clone
        other.lazy = dict(self.lazy)
        other.heap_top = self.heap_top
        other.heap_limit = self.heap_limit
        return other
