"""Reading a QR code back from the SVG a page carries: its dark modules from the SVG path, then the payload
decoded from them (format information, unmasking, the zigzag of data modules, de-interleaving, byte mode).

segno writes QR codes but does not read them; it is used here for its tables (alignment pattern positions,
blocks) and to tell one format information from another, never for what the SVG encodes. Enough of a reader
for the receipt's QR code: no error correction (a rendered SVG has no damaged module), byte, numeric and
alphanumeric segments (no kanji, no ECI), versions 1 to 40."""

import re
from functools import cache

import segno
from segno import consts

_PATH = re.compile(r'<path[^>]*\sstroke="[^"]+"[^>]*\sd="([^"]+)"')
_STEP = re.compile(r"([MmHhVv])\s*(-?[\d.]+)(?:[\s,]+(-?[\d.]+))?")
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_MASKS = [
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0,
    lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
]


class NotAQrCode(ValueError):
    pass


def svg_modules(svg: str) -> list[list[bool]]:
    """The symbol's modules (True for dark, quiet zone removed) drawn by segno's SVG path: "M x y" moves,
    "h n" draws n dark modules on the row at y - 0.5, "m dx dy" moves relatively."""
    match = _PATH.search(svg)
    if not match:
        raise NotAQrCode("no dark path in the SVG")
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for command, first, second in _STEP.findall(match.group(1)):
        a = float(first)
        if command == "M":
            x, y = a, float(second)
        elif command == "m":
            x, y = x + a, y + float(second)
        elif command == "h":
            start, end = sorted((x, x + a))
            dark.update((col, int(y - 0.5)) for col in range(int(start), int(end)))
            x += a
        else:
            raise NotAQrCode(f"unexpected path command {command}")
    if not dark:
        raise NotAQrCode("no dark module")
    left, top = min(c for c, _ in dark), min(r for _, r in dark)
    size = max(max(c for c, _ in dark) - left, max(r for _, r in dark) - top) + 1
    return [[(left + c, top + r) in dark for c in range(size)] for r in range(size)]


# The format information's first copy, around the top-left finder pattern.
_FORMAT_CELLS = [(8, c) for c in (0, 1, 2, 3, 4, 5, 7, 8)] + [(r, 8) for r in (7, 5, 4, 3, 2, 1, 0)]


@cache
def _function_modules(version: int) -> frozenset[tuple[int, int]]:
    """The modules of a symbol of ``version`` that hold no data (ISO/IEC 18004 §6.3): finder patterns with their
    separators, timing patterns, alignment patterns, format and version information, the dark module."""
    size = 17 + 4 * version
    cells = set()
    for top, left in ((0, 0), (0, size - 8), (size - 8, 0)):
        cells.update((top + r, left + c) for r in range(8) for c in range(8))
    cells.update((6, i) for i in range(size))
    cells.update((i, 6) for i in range(size))
    centres = consts.ALIGNMENT_POS[version - 2] if version > 1 else ()
    for r in centres:
        for c in centres:
            if (r, c) in ((6, 6), (6, size - 7), (size - 7, 6)):  # none where a finder pattern is
                continue
            cells.update((r + dr, c + dc) for dr in range(-2, 3) for dc in range(-2, 3))
    cells.update((8, c) for c in range(9))
    cells.update((r, 8) for r in range(9))
    cells.update((8, size - 1 - i) for i in range(8))
    cells.update((size - 1 - i, 8) for i in range(8))  # the dark module is the eighth
    if version >= 7:
        cells.update((r, size - 11 + c) for r in range(6) for c in range(3))
        cells.update((size - 11 + r, c) for r in range(3) for c in range(6))
    return frozenset(cells)


def _format(modules: list[list[bool]], version: int) -> tuple[str, int]:
    """The error correction level and mask whose format information the symbol carries (compared with the
    format information of a symbol segno makes with each level and mask)."""
    for error in "LMQH":
        for mask in range(8):
            reference = segno.make("0", version=version, error=error, mask=mask, micro=False, boost_error=False)
            if all(bool(reference.matrix[r][c] & 1) == modules[r][c] for r, c in _FORMAT_CELLS):
                return error, mask
    raise NotAQrCode("no valid format information")


def _data_bits(modules: list[list[bool]], version: int, mask: int) -> list[int]:
    """The data modules unmasked, in the order they were placed: two columns at a time from the right, up then
    down, the vertical timing pattern's column skipped."""
    size = len(modules)
    function = _function_modules(version)
    bits = []
    col, upward = size - 1, True
    while col > 0:
        if col == 6:  # the vertical timing pattern is skipped as a whole column
            col -= 1
        for row in (range(size - 1, -1, -1) if upward else range(size)):
            for c in (col, col - 1):
                if (row, c) not in function:
                    bits.append(int(modules[row][c] != _MASKS[mask](row, c)))
        col -= 2
        upward = not upward
    return bits


def _data_codewords(bits: list[int], version: int, error: str) -> list[int]:
    codewords = [int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits) - len(bits) % 8, 8)]
    blocks = [ec.num_data for ec in consts.ECC[version][consts.ERROR_MAPPING[error]] for _ in range(ec.num_blocks)]
    data: list[list[int]] = [[] for _ in blocks]
    position = 0
    for i in range(max(blocks)):
        for b, length in enumerate(blocks):
            if i < length:
                data[b].append(codewords[position])
                position += 1
    return [cw for block in data for cw in block]


def _segments(codewords: list[int], version: int) -> str:
    bits = "".join(f"{cw:08b}" for cw in codewords)
    size = 0 if version < 10 else 1 if version < 27 else 2
    count_bits = {"0001": (10, 12, 14)[size], "0010": (9, 11, 13)[size], "0100": (8, 16, 16)[size]}
    text, at = b"", 0
    while at + 4 <= len(bits):
        mode = bits[at:at + 4]
        at += 4
        if mode == "0000":
            break
        if mode not in count_bits:
            raise NotAQrCode(f"unsupported mode {mode}")
        count = int(bits[at:at + count_bits[mode]], 2)
        at += count_bits[mode]
        if mode == "0100":
            text += bytes(int(bits[at + 8 * i:at + 8 * i + 8], 2) for i in range(count))
            at += 8 * count
        elif mode == "0010":
            chars = []
            for _ in range(count // 2):
                value = int(bits[at:at + 11], 2)
                chars += [_ALNUM[value // 45], _ALNUM[value % 45]]
                at += 11
            if count % 2:
                chars.append(_ALNUM[int(bits[at:at + 6], 2)])
                at += 6
            text += "".join(chars).encode()
        else:
            digits = ""
            tail = {0: [], 1: [(4, 1)], 2: [(7, 2)]}[count % 3]  # the last one or two digits
            for width, length in [(10, 3)] * (count // 3) + tail:
                digits += f"{int(bits[at:at + width], 2):0{length}d}"
                at += width
            text += digits.encode()
    return text.decode("utf-8")


def decode(modules: list[list[bool]]) -> str:
    """The text a QR code's modules hold."""
    size = len(modules)
    if size < 21 or (size - 17) % 4:
        raise NotAQrCode(f"a QR code is not {size} modules wide")
    version = (size - 17) // 4
    error, mask = _format(modules, version)
    bits = _data_bits(modules, version, mask)
    return _segments(_data_codewords(bits, version, error), version)


def decode_svg(svg: str) -> str:
    return decode(svg_modules(svg))
