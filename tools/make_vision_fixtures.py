#!/usr/bin/env python3
"""Makes the image fixtures of tests/test_vision.c in tests/vision/.

Run by hand (needs numpy, Pillow and transformers; no network):

    python tools/make_vision_fixtures.py [--out tests/vision]

What it writes
    *.png *.jpg *.bmp *.ppm *.pgm   small synthetic "photos" (gradients, texture, noise, shapes)
                                    in every format variant the decoder supports
    *.rgb                           reference decoded pixels, raw 8-bit RGB, row-major
    pre_*.png                       reference preprocessing tensors, stored losslessly as the
                                    8-bit codes k with value = (k / 255 - mean) / std (the script
                                    checks that every value of the transformers output is such
                                    a code to 1e-6 before writing it)
    pre_*.f32                       three rows of each reference tensor as raw little-endian
                                    float32, for a direct float comparison
    manifest.txt                    one line per check, read by the C test

The reference decoder is Pillow: Image.open(path).convert("RGB"), which drops alpha and does not
apply EXIF orientation. Two documented exceptions, where Pillow has no 8-bit answer of its own:
16-bit greyscale PNG and PGM open as 32-bit integer images whose convert("RGB") clips at 255, so
their references are computed here (PNG: high byte, as Pillow does for 16-bit RGB; PGM: the
maxval scaling Pillow uses for every other PNM). The reference preprocessor is transformers'
SiglipImageProcessorPil (the Pillow-backed SiglipImageProcessor).

PNG, BMP and PNM writers are our own (written from the format specifications) so that every
colour type, bit depth, filter type and Adam7 can be produced; JPEG comes from Pillow's
libjpeg-turbo.
"""
import argparse
import io
import os
import shutil
import struct
import subprocess
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageOps


# ---- Synthetic content ---------------------------------------------------------------------

def photo(width, height, seed):
    """A small photo-like RGB image: sky-like gradient, textured ground, shapes, sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 60 + 150 * x / width + 20 * np.sin(y / 3.0)
    g = 90 + 120 * y / height + 25 * np.cos((x + y) / 5.0)
    b = 200 - 140 * y / height + 15 * np.sin(x / 2.0)
    base = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (height, width, 3))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.ellipse([width * 0.15, height * 0.2, width * 0.55, height * 0.7], fill=(230, 200, 40))
    draw.rectangle([width * 0.6, height * 0.5, width * 0.9, height * 0.95], fill=(30, 110, 60))
    draw.line([0, height - 1, width - 1, 0], fill=(250, 250, 250), width=2)
    draw.polygon([(width * 0.7, 2), (width - 2, height * 0.4), (width * 0.5, height * 0.3)],
                 fill=(180, 40, 90))
    return np.asarray(image)


def alpha_plane(width, height, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    a = 255 * (x + y) / (width + height - 2) + rng.normal(0, 10, (height, width))
    a[: height // 4, : width // 4] = 0
    a[-height // 4:, -width // 4:] = 255
    return np.clip(a, 0, 255).astype(np.uint8)


def grey_of(rgb):
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).round().astype(
        np.uint8)


# ---- PNG writer (own, from the PNG specification) ------------------------------------------

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """samples: 1-D array of sample values of one row (all channels interleaved)."""
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    if depth == 16:
        return samples.astype(">u2").tobytes()
    per_byte = 8 // depth
    out = bytearray((len(samples) + per_byte - 1) // per_byte)
    for i, v in enumerate(samples):
        out[i // per_byte] |= int(v) << (8 - depth * (i % per_byte + 1))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, row, prev, bpp):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i] if prev is not None else 0
        c = prev[i - bpp] if (prev is not None and i >= bpp) else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out[i] = (row[i] - pred) & 0xFF
    return bytes([kind]) + bytes(out)


def write_png(path, samples, depth, colour_type, interlace=False, plte=None, trns=None,
              level=9, idat_split=0):
    """samples: (H, W, C) integer array in the file's sample units. Filters cycle 0..4."""
    height, width, channels = samples.shape
    bpp = max(1, channels * depth // 8)
    raw = bytearray()
    row_index = 0
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = None
        for row in sub:
            packed = pack_row(row.reshape(-1), depth)
            raw += filter_row(row_index % 5, packed, prev, bpp)
            prev = packed
            row_index += 1
    data = zlib.compress(bytes(raw), level)
    out = b"\x89PNG\r\n\x1a\n"
    out += png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0,
                                          1 if interlace else 0))
    out += png_chunk(b"tEXt", b"Comment\x00gemini vision fixture")
    if plte is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).reshape(-1)))
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    if idat_split:
        for i in range(0, len(data), idat_split):
            out += png_chunk(b"IDAT", data[i:i + idat_split])
    else:
        out += png_chunk(b"IDAT", data)
    out += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


# ---- BMP and PNM writers ------------------------------------------------------------------

def write_bmp(path, rgb, bits, top_down=False, alpha=None, bitfields=False, palette=None,
              indices=None):
    height, width = rgb.shape[:2] if rgb is not None else indices.shape
    stride = (width * bits + 31) // 32 * 4
    rows = []
    for y in range(height):
        if bits == 8:
            row = bytes(indices[y].astype(np.uint8))
        elif bits == 24:
            row = rgb[y][:, ::-1].astype(np.uint8).tobytes()
        else:
            a = alpha[y] if alpha is not None else np.full(width, 0x5A, np.uint8)
            row = np.concatenate([rgb[y][:, ::-1], a[:, None]], axis=1).astype(
                np.uint8).tobytes()
        rows.append(row + b"\x00" * (stride - len(row)))
    if not top_down:
        rows.reverse()
    pixel_data = b"".join(rows)
    header_size = 124 if bitfields else 40
    palette_bytes = b""
    if bits == 8:
        palette_bytes = b"".join(bytes([c[2], c[1], c[0], 0]) for c in palette)
    offset = 14 + header_size + palette_bytes.__len__()
    info = struct.pack("<IiiHHIIiiII", header_size, width, -height if top_down else height, 1,
                       bits, 3 if bitfields else 0, len(pixel_data), 2835, 2835,
                       len(palette) if bits == 8 else 0, 0)
    if bitfields:
        info += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
        info += b"BGRs" + b"\x00" * (124 - 40 - 20)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixel_data), 0, 0, offset)
    with open(path, "wb") as f:
        f.write(head + info + palette_bytes + pixel_data)


def write_pnm(path, samples, maxval):
    height, width = samples.shape[:2]
    magic = b"P6" if samples.ndim == 3 else b"P5"
    dtype = ">u2" if maxval > 255 else np.uint8
    head = magic + b"\n# gemini vision fixture\n%d %d\n%d\n" % (width, height, maxval)
    with open(path, "wb") as f:
        f.write(head + samples.astype(dtype).tobytes())


# ---- References ---------------------------------------------------------------------------

def pillow_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def pnm_scale(v, maxval):
    """Pillow's PNM rule, checked against Pillow for 8-bit files: v*255/maxval rounded to the
    nearest integer, ties to even (76.5 -> 76, 127.5 -> 128)."""
    v = np.minimum(v.astype(np.int64), maxval) * 255
    q, r = v // maxval, v % maxval
    q += (2 * r > maxval) | ((2 * r == maxval) & (q % 2 == 1))
    return q.astype(np.uint8)


class Manifest:
    def __init__(self, out):
        self.out = out
        self.lines = []

    def exact(self, name, rgb, channels, options="-"):
        rgb = np.ascontiguousarray(rgb, np.uint8)
        ref = name.replace(".", "_") + ("" if options == "-" else "_" + options) + ".rgb"
        rgb.tofile(os.path.join(self.out, ref))
        self.lines.append("exact %s %d %d %d %s %s" % (name, rgb.shape[1], rgb.shape[0],
                                                          channels, ref, options))

    def jpeg(self, name, channels, options="-"):
        path = os.path.join(self.out, name)
        with Image.open(path) as im:
            if options == "exif":
                im = ImageOps.exif_transpose(im)
            rgb = np.ascontiguousarray(np.asarray(im.convert("RGB")))
        ref = name.replace(".", "_") + ("" if options == "-" else "_" + options) + ".rgb"
        rgb.tofile(os.path.join(self.out, ref))
        self.lines.append("jpeg %s %d %d %d %s %s" % (name, rgb.shape[1], rgb.shape[0], channels,
                                                         ref, options))

    def write(self):
        with open(os.path.join(self.out, "manifest.txt"), "w") as f:
            f.write("# kind file width height channels reference options"
                    " (made by tools/make_vision_fixtures.py)\n")
            f.write("\n".join(self.lines) + "\n")


# ---- The fixtures -------------------------------------------------------------------------

def make_png(m, out):
    width, height = 45, 33
    rgb = photo(width, height, 1)
    grey = grey_of(rgb)
    alpha = alpha_plane(width, height, 2)
    rng = np.random.default_rng(3)

    def save(name, samples, depth, ctype, channels, expect, **kw):
        path = os.path.join(out, name)
        write_png(path, samples, depth, ctype, **kw)
        got = pillow_rgb(path)
        if expect is not None:
            assert np.array_equal(got, expect), name + ": Pillow disagrees with the source"
        m.exact(name, got if expect is None else expect, channels)

    def grey_rgb(g):
        return np.repeat(g[..., None], 3, axis=2)

    for interlace in (False, True):
        tag = "_i" if interlace else ""
        save("rgb8%s.png" % tag, rgb, 8, 2, 3, rgb, interlace=interlace)
        rgba = np.concatenate([rgb, alpha[..., None]], axis=2)
        save("rgba8%s.png" % tag, rgba, 8, 6, 4, rgb, interlace=interlace)
        save("grey8%s.png" % tag, grey[..., None], 8, 0, 1, grey_rgb(grey), interlace=interlace)
        ga = np.stack([grey, alpha], axis=2)
        save("greya8%s.png" % tag, ga, 8, 4, 2, grey_rgb(grey), interlace=interlace)
        for depth in (1, 2, 4):
            levels = (1 << depth) - 1
            g = (grey.astype(np.int32) * levels + 127) // 255
            scaled = (g * 255 // levels).astype(np.uint8)
            save("grey%d%s.png" % (depth, tag), g[..., None], depth, 0, 1, grey_rgb(scaled),
                 interlace=interlace)
        for depth in (1, 2, 4, 8):
            count = 1 << depth
            plte = rng.integers(0, 256, (count, 3))
            plte[0] = (0, 0, 0)
            idx = (grey.astype(np.int32) * count) // 256
            trns = bytes(range(0, 256, 256 // count))[: count // 2 + 1]
            save("pal%d%s.png" % (depth, tag), idx[..., None], depth, 3, 4,
                 plte[idx].astype(np.uint8), interlace=interlace, plte=plte, trns=trns)
        rgb16 = rgb.astype(np.uint16) * 257 + rng.integers(0, 257, rgb.shape).astype(np.uint16)
        save("rgb16%s.png" % tag, rgb16, 16, 2, 3, (rgb16 >> 8).astype(np.uint8),
             interlace=interlace)
        rgba16 = np.concatenate([rgb16, alpha[..., None].astype(np.uint16) * 257], axis=2)
        save("rgba16%s.png" % tag, rgba16, 16, 6, 4, (rgb16 >> 8).astype(np.uint8),
             interlace=interlace)
        g16 = grey.astype(np.uint16) * 257 + 100
        path = os.path.join(out, "grey16%s.png" % tag)
        write_png(path, g16[..., None], 16, 0, interlace=interlace)
        m.exact("grey16%s.png" % tag, grey_rgb((g16 >> 8).astype(np.uint8)), 1)
        ga16 = np.stack([g16, alpha.astype(np.uint16) * 257], axis=2)
        save("greya16%s.png" % tag, ga16, 16, 4, 2, grey_rgb((g16 >> 8).astype(np.uint8)),
             interlace=interlace)

    # tRNS on truecolour and grey (alpha is then present but convert("RGB") drops it).
    key = rgb[5, 5]
    save("rgb8_trns.png", rgb, 8, 2, 4, rgb, trns=struct.pack(">HHH", *[int(v) for v in key]))
    save("grey8_trns.png", grey[..., None], 8, 0, 2, grey_rgb(grey),
         trns=struct.pack(">H", int(grey[0, 0])))
    # Stored (uncompressed) and fixed-Huffman deflate blocks, and IDAT split in small chunks.
    save("rgb8_stored.png", rgb, 8, 2, 3, rgb, level=0)
    save("rgb8_fast.png", rgb, 8, 2, 3, rgb, level=1, idat_split=97)
    # Alpha composited on white, for the blend option: reference computed here.
    a = alpha.astype(np.int32)[..., None]
    blended = (rgb.astype(np.int32) * a + 255 * (255 - a) + 127) // 255
    m.exact("rgba8.png", blended.astype(np.uint8), 4, "white")


def make_jpeg(m, out):
    width, height = 77, 53
    rgb = Image.fromarray(photo(width, height, 4))
    variants = [("base444.jpg", dict(subsampling=0)), ("base422.jpg", dict(subsampling=1)),
                ("base420.jpg", dict(subsampling=2)), ("prog420.jpg",
                                                      dict(subsampling=2, progressive=True)),
                ("prog444.jpg", dict(subsampling=0, progressive=True)),
                ("restart420.jpg", dict(subsampling=2, restart_marker_blocks=3)),
                ("prog_restart.jpg", dict(subsampling=1, progressive=True,
                                          restart_marker_rows=1)),
                ("q98_444.jpg", dict(subsampling=0, quality=98)),
                ("optimized.jpg", dict(subsampling=2, optimize=True))]
    for name, kw in variants:
        rgb.save(os.path.join(out, name), "JPEG", quality=kw.pop("quality", 85), **kw)
        m.jpeg(name, 3)
    # RGB stored without colour conversion (Adobe transform 0, component ids R G B).
    rgb.save(os.path.join(out, "adobe_rgb.jpg"), "JPEG", quality=85, keep_rgb=True)
    m.jpeg("adobe_rgb.jpg", 3)
    # 4:4:0 and 4:1:1, which Pillow cannot write: libjpeg-turbo's cjpeg (Debian package
    # libjpeg-turbo-progs), when it is installed.
    if shutil.which("cjpeg"):
        ppm = os.path.join(out, "cjpeg_input.ppm")
        write_pnm(ppm, np.asarray(rgb), 255)
        for name, sample in (("cjpeg440.jpg", "1x2"), ("cjpeg411.jpg", "4x1")):
            subprocess.run(["cjpeg", "-quality", "85", "-sample", sample, "-outfile",
                            os.path.join(out, name), ppm], check=True)
            m.jpeg(name, 3)
        os.remove(ppm)
    else:
        print("cjpeg not found: skipping the 4:4:0 and 4:1:1 fixtures")
    # CMYK is refused.
    rgb.convert("CMYK").save(os.path.join(out, "cmyk.jpg"), "JPEG", quality=80)
    m.lines.append("refuse cmyk.jpg unsupported")
    grey = rgb.convert("L")
    grey.save(os.path.join(out, "grey.jpg"), "JPEG", quality=85)
    m.jpeg("grey.jpg", 1)
    grey.save(os.path.join(out, "grey_prog.jpg"), "JPEG", quality=85, progressive=True)
    m.jpeg("grey_prog.jpg", 1)
    # EXIF orientation: each of the 8 values, checked with and without applying it.
    small = rgb.resize((40, 32))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        name = "exif%d.jpg" % orientation
        small.save(os.path.join(out, name), "JPEG", quality=90, exif=exif.tobytes())
        m.jpeg(name, 3)
        m.jpeg(name, 3, "exif")


def make_bmp_pnm(m, out):
    width, height = 45, 33
    rgb = photo(width, height, 5)
    alpha = alpha_plane(width, height, 6)
    grey = grey_of(rgb)

    def check(name, expect, channels, options="-"):
        got = pillow_rgb(os.path.join(out, name))
        assert np.array_equal(got, expect), name + ": Pillow disagrees with the source"
        m.exact(name, expect, channels, options)

    write_bmp(os.path.join(out, "rgb24.bmp"), rgb, 24)
    check("rgb24.bmp", rgb, 3)
    write_bmp(os.path.join(out, "rgb24_topdown.bmp"), rgb, 24, top_down=True)
    check("rgb24_topdown.bmp", rgb, 3)
    write_bmp(os.path.join(out, "rgb32.bmp"), rgb, 32)
    check("rgb32.bmp", rgb, 3)
    write_bmp(os.path.join(out, "rgba32_v5.bmp"), rgb, 32, alpha=alpha, bitfields=True,
              top_down=True)
    check("rgba32_v5.bmp", rgb, 4)
    palette = np.random.default_rng(7).integers(0, 256, (200, 3))
    idx = (grey.astype(np.int32) * 200) // 256
    write_bmp(os.path.join(out, "pal8.bmp"), None, 8, palette=palette, indices=idx)
    check("pal8.bmp", palette[idx].astype(np.uint8), 3)
    Image.fromarray(rgb).save(os.path.join(out, "pillow24.bmp"))
    check("pillow24.bmp", rgb, 3)

    write_pnm(os.path.join(out, "rgb.ppm"), rgb, 255)
    check("rgb.ppm", rgb, 3)
    write_pnm(os.path.join(out, "grey.pgm"), grey, 255)
    check("grey.pgm", np.repeat(grey[..., None], 3, axis=2), 1)
    low = (rgb.astype(np.int32) * 100 // 255)
    write_pnm(os.path.join(out, "max100.ppm"), low, 100)
    check("max100.ppm", pnm_scale(low, 100), 3)
    deep = rgb.astype(np.int32) * 1000 // 255
    write_pnm(os.path.join(out, "max1000.ppm"), deep, 1000)
    check("max1000.ppm", pnm_scale(deep, 1000), 3)
    full = rgb.astype(np.int32) * 257 + 128
    write_pnm(os.path.join(out, "max65535.ppm"), full, 65535)
    check("max65535.ppm", pnm_scale(full, 65535), 3)
    g16 = grey.astype(np.int32) * 4000 // 255
    write_pnm(os.path.join(out, "grey4000.pgm"), g16, 4000)
    m.exact("grey4000.pgm", np.repeat(pnm_scale(g16, 4000)[..., None], 3, axis=2), 1)


def make_preprocess(m, out):
    """Reference tensors from transformers' Pillow-backed SigLIP processor."""
    from transformers import SiglipImageProcessorPil

    sources = {"pre_src96.png": photo(96, 80, 8), "pre_src300.png": photo(300, 260, 9)}
    for name, pixels in sources.items():
        Image.fromarray(pixels).save(os.path.join(out, name), optimize=True)
    cases = [("pre_src96.png", 224, 224, 3), ("pre_src300.png", 224, 224, 3),
             ("pre_src300.png", 224, 224, 2), ("pre_src96.png", 40, 36, 3),
             ("pre_src96.png", 40, 36, 2), ("pre_src300.png", 112, 300, 2)]
    for src, height, width, resample in cases:
        processor = SiglipImageProcessorPil(size={"height": height, "width": width},
                                            resample=resample)
        image = Image.open(os.path.join(out, src))
        tensor = processor(images=image, return_tensors="np")["pixel_values"][0]
        assert tensor.shape == (3, height, width) and tensor.dtype == np.float32
        codes = np.clip(np.round((tensor * 0.5 + 0.5) * 255), 0, 255)
        rebuilt = ((codes / 255.0).astype(np.float32) - 0.5) / 0.5
        assert np.abs(rebuilt - tensor).max() < 1e-6, "tensor is not 8-bit codes"
        base = "pre_%s_%dx%d_%s" % (src[len("pre_src"):-4], width, height,
                                    "bicubic" if resample == 3 else "bilinear")
        Image.fromarray(codes.transpose(1, 2, 0).astype(np.uint8)).save(
            os.path.join(out, base + ".png"), optimize=True)
        rows = [0, height // 2, height - 1]
        tensor[:, rows, :].astype("<f4").tofile(os.path.join(out, base + ".f32"))
        m.lines.append("preprocess %s %d %d %s %s.png %s.f32 %d %d %d" % (
            src, width, height, "bicubic" if resample == 3 else "bilinear", base, base,
            *rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.normpath(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "vision")))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for old in os.listdir(args.out):
        os.remove(os.path.join(args.out, old))
    m = Manifest(args.out)
    make_png(m, args.out)
    make_jpeg(m, args.out)
    make_bmp_pnm(m, args.out)
    make_preprocess(m, args.out)
    m.write()
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print("%d checks, %d files, %d bytes in %s" % (len(m.lines), len(os.listdir(args.out)),
                                                    total, args.out))


if __name__ == "__main__":
    main()
