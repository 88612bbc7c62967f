"""JPEG and PNG files without their metadata, rewritten segment by segment: pixels untouched, bit for bit.

What is kept is an allow-list of what a decoder needs to draw the pixels; everything else goes (EXIF with
its GPS position and camera serial, XMP, IPTC, comments, text chunks, timestamps, ICC profiles, thumbnails,
private segments and anything after the image's end). ICC profiles go too: their description, copyright
and device tags are free text that can name a device or its owner, and the models read the samples as they
are, never through a profile. A file laid out in a way this does not follow raises UnexpectedLayout; the
caller then re-encodes the decoded pixels instead.
"""

from __future__ import annotations

import struct
import zlib


class UnexpectedLayout(ValueError):
    """The file is not laid out as this module expects; it cannot be rewritten losslessly here."""


# -- JPEG ---------------------------------------------------------------------------------------

_SOI, _EOI, _SOS, _APP0, _APP14 = 0xD8, 0xD9, 0xDA, 0xE0, 0xEE
# Frame headers (SOF0-SOF15 but DHT, JPG and DAC), Huffman and arithmetic tables, quantisation tables,
# restart interval, number of lines, and the hierarchical markers: what decoding needs.
_JPEG_DECODING = {*range(0xC0, 0xD0), 0xDB, 0xDC, 0xDD, 0xDE, 0xDF} - {0xC8}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and restart markers carry no length
_JFIF, _JFIF_FIELDS = b"JFIF\x00", 12  # identifier, version, density unit, x and y density; then a thumbnail
_ADOBE = b"Adobe"  # APP14: how the decoder is to turn the components into colour (YCbCr, YCCK, none)
_ADOBE_LENGTH = 12


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG with only what decoding needs: frame, tables, scans, JFIF (without thumbnail) and Adobe's APP14."""
    if not data.startswith(b"\xff\xd8"):
        raise UnexpectedLayout("no start-of-image marker")
    kept, position = [b"\xff\xd8"], 2
    while True:
        marker, position = _next_marker(data, position)
        if marker == _EOI:
            kept.append(b"\xff\xd9")
            return b"".join(kept)  # whatever follows (a phone's trailer, a second image, a video) is dropped
        if marker in _JPEG_STANDALONE or marker == _SOI:
            raise UnexpectedLayout(f"marker 0x{marker:02X} outside a scan")
        if position + 2 > len(data):
            raise UnexpectedLayout("segment length past the end")
        (length,) = struct.unpack_from(">H", data, position)
        payload = data[position + 2 : position + length]
        if length < 2 or len(payload) != length - 2:
            raise UnexpectedLayout("segment past the end")
        position += length
        segment = _kept_segment(marker, payload)
        if segment:
            kept.append(segment)
        if marker == _SOS:
            scan_end = _scan_end(data, position)
            kept.append(data[position:scan_end])
            position = scan_end


def _next_marker(data: bytes, position: int) -> tuple[int, int]:
    if position >= len(data) or data[position] != 0xFF:
        raise UnexpectedLayout("expected a marker")
    while position < len(data) and data[position] == 0xFF:  # fill bytes may precede a marker
        position += 1
    if position >= len(data):
        raise UnexpectedLayout("file ends in fill bytes")
    return data[position], position + 1


def _scan_end(data: bytes, position: int) -> int:
    """Where the entropy-coded data that starts at position ends: the first marker that is no restart marker."""
    while True:
        found = data.find(b"\xff", position)
        if found < 0 or found + 1 >= len(data):
            raise UnexpectedLayout("scan without an end")
        following = data[found + 1]
        if following == 0x00 or following == 0xFF or 0xD0 <= following <= 0xD7:  # stuffing, fill, restart
            position = found + 1
            continue
        return found


def _kept_segment(marker: int, payload: bytes) -> bytes | None:
    if marker in _JPEG_DECODING or marker == _SOS:
        return _jpeg_segment(marker, payload)
    if marker == _APP0 and payload.startswith(_JFIF) and len(payload) >= _JFIF_FIELDS + 2:
        return _jpeg_segment(marker, payload[:_JFIF_FIELDS] + b"\x00\x00")  # no thumbnail
    if marker == _APP14 and payload.startswith(_ADOBE) and len(payload) >= _ADOBE_LENGTH:
        return _jpeg_segment(marker, payload[:_ADOBE_LENGTH])
    return None


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


# -- PNG ----------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Critical chunks, transparency, and how the samples map to colour (gamma, chromaticities, sRGB, cICP,
# significant bits, background, pixel aspect). Text (tEXt, zTXt, iTXt), eXIf, tIME, iCCP and private
# chunks are left behind.
_PNG_KEPT = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"cICP", b"sBIT", b"bKGD", b"pHYs"}
_PNG_ANIMATION = b"acTL"


def strip_png(data: bytes) -> bytes:
    """The PNG with only the chunks that draw it; an animated PNG raises UnexpectedLayout (its first frame
    need not be the image a plain decoder shows)."""
    if not data.startswith(PNG_SIGNATURE):
        raise UnexpectedLayout("no PNG signature")
    kept, position = [PNG_SIGNATURE], len(PNG_SIGNATURE)
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data) or (position == len(PNG_SIGNATURE)) != (kind == b"IHDR"):
            raise UnexpectedLayout("chunk past the end, or IHDR not first")
        if kind == _PNG_ANIMATION:
            raise UnexpectedLayout("animated PNG")
        if kind in _PNG_KEPT:
            (crc,) = struct.unpack_from(">I", data, end - 4)
            if zlib.crc32(data[position + 4 : end - 4]) != crc:
                raise UnexpectedLayout(f"{kind.decode()} chunk fails its CRC")
            kept.append(data[position:end])
        position = end
        if kind == b"IEND":
            return b"".join(kept)  # anything after the end is dropped
    raise UnexpectedLayout("no IEND chunk")
