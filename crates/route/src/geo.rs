//! Great-circle distance and the precomputed candidate grid.

/// Mean Earth radius in kilometres (IUGG).
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Precomputed trigonometry of one point, so that the haversine term of a
/// pair costs a handful of multiplications and no transcendental calls.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trig {
    sin_hlat: f64,
    cos_hlat: f64,
    cos_lat: f64,
    sin_hlon: f64,
    cos_hlon: f64,
}

impl Trig {
    pub(crate) fn new(lat_deg: f64, lon_deg: f64) -> Self {
        let lat = lat_deg.to_radians();
        let (sin_hlat, cos_hlat) = (lat * 0.5).sin_cos();
        let (sin_hlon, cos_hlon) = (lon_deg.to_radians() * 0.5).sin_cos();
        Self {
            sin_hlat,
            cos_hlat,
            cos_lat: lat.cos(),
            sin_hlon,
            cos_hlon,
        }
    }
}

/// The haversine term `a = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)`, computed
/// with the angle-difference identities from precomputed half-angle sines
/// and cosines. It is monotonic in the great-circle distance, so ranking
/// compares it directly; it is exactly symmetric in its arguments.
///
/// Every distance in this crate (ranking, [`distance_km`], `explain`) goes
/// through this one function, so rankings agree bit for bit.
#[inline]
pub(crate) fn hav_key(a: &Trig, b: &Trig) -> f64 {
    let s_lat = b.sin_hlat * a.cos_hlat - b.cos_hlat * a.sin_hlat;
    let s_lon = b.sin_hlon * a.cos_hlon - b.cos_hlon * a.sin_hlon;
    s_lat * s_lat + a.cos_lat * b.cos_lat * s_lon * s_lon
}

/// Converts a haversine term into kilometres.
#[inline]
pub(crate) fn key_to_km(key: f64) -> f64 {
    2.0 * EARTH_RADIUS_KM * key.clamp(0.0, 1.0).sqrt().asin()
}

/// Great-circle (haversine) distance in kilometres between two
/// `(latitude, longitude)` points in degrees.
///
/// Ranking in [`Router::decide`](crate::Router::decide) orders PoPs exactly
/// as sorting by `(distance_km(client, pop), pop id)` would.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    key_to_km(hav_key(&Trig::new(a.0, a.1), &Trig::new(b.0, b.1)))
}

/// Whether a (lat, lon) pair is usable: finite and within range.
pub(crate) fn valid_coords(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

/// Fine cell size in degrees.
const CELL_DEG: f64 = 1.0;
const ROWS: usize = 180; // 180 / CELL_DEG
const COLS: usize = 360; // 360 / CELL_DEG
/// Fine cells per coarse cell side (coarse cells are 10°×10°).
const SUPER: usize = 10;
/// Safety margin (radians, ≈ 6 m) absorbing floating-point error between the
/// dot-product bounds used at build time and the haversine used at query time.
const EPS_RAD: f64 = 1e-6;

/// Candidate table for one PoP set (a service's PoPs that have addresses of
/// one family; services with equal sets share it).
///
/// Invariant: for every point `x` in a cell, the `k` PoPs of `set` nearest to
/// `x` (ties by PoP id) are all in that cell's candidate list. So ranking the
/// candidates exactly and reading the first `k` gives exactly the first `k`
/// of the full ranking.
///
/// Storage (CSR): `offsets` has `ROWS*COLS + 1 = 64 801` `u32` (≈ 253 KiB)
/// and `ids` one `u16` per (cell, candidate) pair; a cell typically holds
/// `k`..`2k` candidates (7.4 on average for 1 000 uniform PoPs and `k = 5`:
/// ≈ 64 800 × 7.4 × 2 B ≈ 940 KiB), so ≈ 1.1 MiB per table.
/// When `set.len() <= k` or `set.len() <= MIN_GRID_SET` no grid is built:
/// every cell's candidates are `set`.
#[derive(Clone, Debug)]
pub(crate) struct Grid {
    /// Ranking depth guaranteed exact from a cell's candidates.
    pub(crate) k: usize,
    /// All PoPs of the set, ascending id.
    pub(crate) set: Vec<u16>,
    offsets: Vec<u32>,
    ids: Vec<u16>,
}

/// Sets this small are ranked by scanning them: a grid would cost memory
/// and save nothing.
const MIN_GRID_SET: usize = 16;

/// Cell centres and radii; they depend only on the row (radius) and on
/// row/column (centre), so they are computed once per process.
struct CellGeometry {
    /// (sin, cos) of fine / coarse row centre latitudes.
    fine_lat: Vec<(f64, f64)>,
    coarse_lat: Vec<(f64, f64)>,
    /// (sin, cos) of fine / coarse column centre longitudes.
    fine_lon: Vec<(f64, f64)>,
    coarse_lon: Vec<(f64, f64)>,
    fine_r: Vec<f64>,
    coarse_r: Vec<f64>,
}

impl CellGeometry {
    fn get() -> &'static Self {
        static GEO: std::sync::OnceLock<CellGeometry> = std::sync::OnceLock::new();
        GEO.get_or_init(|| {
            let sdeg = CELL_DEG * SUPER as f64;
            let centre = |i: usize, size: f64, origin: f64| {
                (origin + (i as f64 + 0.5) * size).to_radians().sin_cos()
            };
            Self {
                fine_lat: (0..ROWS).map(|r| centre(r, CELL_DEG, -90.0)).collect(),
                coarse_lat: (0..ROWS / SUPER).map(|r| centre(r, sdeg, -90.0)).collect(),
                fine_lon: (0..COLS).map(|c| centre(c, CELL_DEG, -180.0)).collect(),
                coarse_lon: (0..COLS / SUPER).map(|c| centre(c, sdeg, -180.0)).collect(),
                fine_r: (0..ROWS)
                    .map(|r| cell_disc(-90.0 + r as f64 * CELL_DEG, 0.0, CELL_DEG, CELL_DEG).1)
                    .collect(),
                coarse_r: (0..ROWS / SUPER)
                    .map(|r| cell_disc(-90.0 + r as f64 * sdeg, 0.0, sdeg, sdeg).1)
                    .collect(),
            }
        })
    }

    fn fine_centre(&self, row: usize, col: usize) -> [f64; 3] {
        let (sl, cl) = self.fine_lat[row];
        let (so, co) = self.fine_lon[col];
        [cl * co, cl * so, sl]
    }

    fn coarse_centre(&self, row: usize, col: usize) -> [f64; 3] {
        let (sl, cl) = self.coarse_lat[row];
        let (so, co) = self.coarse_lon[col];
        [cl * co, cl * so, sl]
    }
}

fn unit(lat_deg: f64, lon_deg: f64) -> [f64; 3] {
    let (sl, cl) = lat_deg.to_radians().sin_cos();
    let (so, co) = lon_deg.to_radians().sin_cos();
    [cl * co, cl * so, sl]
}

fn dot(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn angle(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    dot(a, b).clamp(-1.0, 1.0).acos()
}

/// Centre and angular radius (max distance from the centre to any point) of
/// the lat/lon box (the radius does not depend on the box's longitude). The farthest point of such a box from its centre is a
/// corner; edge midpoints are included anyway, and the result is inflated.
fn cell_disc(lat0: f64, lon0: f64, dlat: f64, dlon: f64) -> ([f64; 3], f64) {
    let c = unit(lat0 + dlat * 0.5, lon0 + dlon * 0.5);
    let mut r: f64 = 0.0;
    for (fa, fo) in [
        (0.0, 0.0),
        (0.0, 1.0),
        (1.0, 0.0),
        (1.0, 1.0),
        (0.0, 0.5),
        (1.0, 0.5),
        (0.5, 0.0),
        (0.5, 1.0),
    ] {
        let p = unit(lat0 + dlat * fa, lon0 + dlon * fo);
        r = r.max(angle(&c, &p));
    }
    (c, r * (1.0 + 1e-9) + EPS_RAD)
}

/// Keeps the PoPs of `from` that may be among the `k` nearest of any point
/// within angular radius `r` of `c`, appending them to `out`.
///
/// With `θ(p)` the angle from `c` to `p`: every point of the disc is within
/// `T = θ_k + r` of the `k` PoPs with the smallest `θ` (so its k-th nearest
/// distance is at most `T`), and at least `θ(p) - r` from `p`; so `p` can be
/// among the `k` nearest only if `θ(p) <= θ_k + 2r`. Compared in the dot
/// product domain (monotonic), with `EPS_RAD` of slack.
fn filter(
    c: &[f64; 3],
    r: f64,
    k: usize,
    from: &[u16],
    units: &[[f64; 3]],
    scratch: &mut Vec<f64>,
    out: &mut Vec<u16>,
) {
    if from.len() <= k {
        out.extend_from_slice(from);
        return;
    }
    scratch.clear();
    scratch.extend(from.iter().map(|&p| dot(c, &units[usize::from(p)])));
    // k-th largest dot == k-th smallest angle.
    let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let theta_k = kth.clamp(-1.0, 1.0).acos();
    let limit = theta_k + 2.0 * r + EPS_RAD;
    if limit >= std::f64::consts::PI {
        out.extend_from_slice(from);
        return;
    }
    let min_dot = limit.cos();
    out.extend(
        from.iter()
            .copied()
            .filter(|&p| dot(c, &units[usize::from(p)]) >= min_dot),
    );
}

impl Grid {
    /// Builds the table for `set` (ascending PoP ids) with ranking depth `k`.
    pub(crate) fn build(set: Vec<u16>, k: usize, units: &[[f64; 3]]) -> Self {
        let k = k.min(set.len()).max(1);
        if set.len() <= k || set.len() <= MIN_GRID_SET {
            return Self {
                k,
                set,
                offsets: Vec::new(),
                ids: Vec::new(),
            };
        }
        let geo = CellGeometry::get();
        let mut scratch = Vec::with_capacity(set.len());
        let mut coarse: Vec<Vec<u16>> = vec![Vec::new(); COLS / SUPER];
        let mut offsets = Vec::with_capacity(ROWS * COLS + 1);
        offsets.push(0u32);
        let mut ids = Vec::with_capacity(ROWS * COLS * (k + k / 2));
        for row in 0..ROWS {
            if row % SUPER == 0 {
                let srow = row / SUPER;
                for (scol, list) in coarse.iter_mut().enumerate() {
                    list.clear();
                    let c = geo.coarse_centre(srow, scol);
                    filter(&c, geo.coarse_r[srow], k, &set, units, &mut scratch, list);
                }
            }
            for col in 0..COLS {
                let c = geo.fine_centre(row, col);
                let from = &coarse[col / SUPER];
                filter(&c, geo.fine_r[row], k, from, units, &mut scratch, &mut ids);
                // ids.len() <= cells * u16::MAX, far below u32::MAX.
                offsets.push(u32::try_from(ids.len()).unwrap_or(u32::MAX));
            }
        }
        ids.shrink_to_fit();
        Self {
            k,
            set,
            offsets,
            ids,
        }
    }

    /// Whether the first `k` ranked candidates are the whole set.
    pub(crate) fn complete(&self) -> bool {
        self.set.len() <= self.k
    }

    /// Candidate PoPs for a (valid) location.
    #[inline]
    pub(crate) fn candidates(&self, lat: f64, lon: f64) -> &[u16] {
        if self.offsets.is_empty() {
            return &self.set;
        }
        let row = (((lat + 90.0) / CELL_DEG) as usize).min(ROWS - 1);
        let col = (((lon + 180.0) / CELL_DEG) as usize).min(COLS - 1);
        let i = row * COLS + col;
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        &self.ids[a..b]
    }

    /// Heap bytes used by the table.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.set.len() * 2 + self.offsets.len() * 4 + self.ids.len() * 2
    }

    /// Mean candidates per cell (1.0 ratio = `k`).
    pub(crate) fn mean_candidates(&self) -> f64 {
        if self.offsets.is_empty() {
            self.set.len() as f64
        } else {
            self.ids.len() as f64 / (ROWS * COLS) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // Paris - London ≈ 343.5 km; antipodes = half circumference.
        let d = distance_km((48.8566, 2.3522), (51.5074, -0.1278));
        assert!((d - 343.5).abs() < 1.0, "{d}");
        let d = distance_km((0.0, 0.0), (0.0, 180.0));
        assert!(
            (d - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6,
            "{d}"
        );
        assert_eq!(distance_km((10.0, 20.0), (10.0, 20.0)), 0.0);
        // Across the antimeridian.
        let d = distance_km((0.0, 179.5), (0.0, -179.5));
        assert!((d - 111.2).abs() < 0.5, "{d}");
    }

    #[test]
    fn symmetric() {
        let a = Trig::new(12.3, -45.6);
        let b = Trig::new(-33.3, 151.2);
        assert_eq!(hav_key(&a, &b), hav_key(&b, &a));
    }
}
