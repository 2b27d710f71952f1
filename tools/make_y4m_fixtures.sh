#!/bin/sh
# Makes the Y4M fixtures of tests/test_vision.c in tests/vision/y4m/ with ffmpeg (Debian's
# ffmpeg 5.1: apt-get install ffmpeg). Run by hand from the repository root:
#
#     sh tools/make_y4m_fixtures.sh [output folder]
#
# Source: tests/vision/pre_src96.png (committed), scaled, 3 frames each, scrolled sideways by a
# tenth of the width per frame so the frames differ. Each clip NAME.y4m comes with
# NAME_y4m.rgb: ffmpeg's own decode of that .y4m file to rgb24 (all frames, one after the
# other), the reference our RGB is compared with. Some headers are rewritten after ffmpeg made
# the clip (C420mpeg2, C420paldv, C420, It): ffmpeg reads those the same way, and the
# reference is its decode of the rewritten file.
#
# manifest.txt, one line per clip: y4m FILE REF W H FRAMES CHROMA MAX_ABS MEAN_ABS
# MAX_ABS and MEAN_ABS are the tolerances the test allows against ffmpeg (see
# gemini_vision.h, "Y4M video"): at even heights ffmpeg's SIMD YUV->RGB truncates (we round
# exactly), within 3 per value; 4:4:4 within 1; mono is copied (exact); at odd heights ffmpeg
# filters the 4:2:0 chroma where we replicate it, so only a loose bound holds there.
set -eu

OUT=${1:-tests/vision/y4m}
SRC=tests/vision/pre_src96.png
mkdir -p "$OUT"
: > "$OUT/manifest.txt.new"

# clip NAME W H PIX_FMT CHROMA MAX MEAN [HEADER_FROM HEADER_TO]
clip() {
    name=$1 w=$2 h=$3 pix=$4 chroma=$5 max=$6 mean=$7
    ffmpeg -v error -y -loop 1 -i "$SRC" -vf "scroll=horizontal=0.1,scale=$w:$h" \
        -frames:v 3 -pix_fmt "$pix" -f yuv4mpegpipe "$OUT/$name.tmp"
    header=$(head -n 1 "$OUT/$name.tmp")
    if [ $# -ge 9 ]; then
        new=$(printf '%s\n' "$header" | sed "s/$8/$9/")
        [ "$new" != "$header" ] || { echo "no $8 in: $header" >&2; exit 1; }
    else
        new=$header
    fi
    { printf '%s\n' "$new"; tail -c +$((${#header} + 2)) "$OUT/$name.tmp"; } > "$OUT/$name.y4m"
    rm -f "$OUT/$name.tmp"
    ffmpeg -v error -y -i "$OUT/$name.y4m" -f rawvideo -pix_fmt rgb24 "$OUT/${name}_y4m.rgb"
    echo "$name: $new"
    echo "y4m $name.y4m ${name}_y4m.rgb $w $h 3 $chroma $max $mean" >> "$OUT/manifest.txt.new"
}

clip c420jpeg 32 24 yuv420p 420jpeg 3 1.6
clip c420mpeg2 32 24 yuv420p 420mpeg2 3 1.6 C420jpeg C420mpeg2
clip c420paldv 30 20 yuv420p 420paldv 3 1.6 C420jpeg C420paldv
clip c420 31 24 yuv420p 420 3 1.6 "C420jpeg XYSCSS=420JPEG" C420
clip c422 32 24 yuv422p 422 3 1.6
clip c422_interlaced 32 24 yuv422p 422 3 1.6 " Ip " " It "
clip c444 32 24 yuv444p 444 1 0.05
clip mono 32 24 gray mono 0 0
clip full420 32 24 yuvj420p 420jpeg 3 1.6
clip odd420 45 33 yuv420p 420jpeg 140 8
mv "$OUT/manifest.txt.new" "$OUT/manifest.txt"
