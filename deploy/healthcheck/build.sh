#!/bin/sh
# Builds egret-probe (the container health check) as a static binary with musl: no libraries,
# no shell, runs on any Linux base image. The Dockerfile's probe stage and .ci/deploy-checks.sh
# run this same script, so CI tests the binary the image ships.
#   deploy/healthcheck/build.sh OUTPUT     needs musl-gcc (Debian: musl-tools)
set -eu
out=${1:?usage: build.sh OUTPUT}
src=$(dirname "$0")/egret-probe.c
musl-gcc -static -Os -s -Wall -Wextra -Werror -o "$out" "$src"
