#!/usr/bin/env bash
# The artifact loader's fuzzer (kept for old commands): bash tools/fuzz.sh artifact [SECONDS].
exec bash "$(dirname "$0")/fuzz.sh" artifact "$@"
