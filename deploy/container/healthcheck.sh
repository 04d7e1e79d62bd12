#!/bin/bash
# The container's HEALTHCHECK: GET /health on the admin listener (admin.listen; port
# $STARLING_ADMIN_PORT, 5280 by default) must answer 200. bash's /dev/tcp, so that the
# image needs no HTTP client.
exec 3<>"/dev/tcp/127.0.0.1/${STARLING_ADMIN_PORT:-5280}" || exit 1
printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 3 _ status _ <&3 && [ "$status" = 200 ]
