#include "diffranet/detector.hpp"

#include <cmath>

#include "diffranet/threads.hpp"

namespace diffranet {

Vec3 subpixel_position_mm(const DetectorGeometry& det, int sub_row, int sub_col) {
    const double step_mm = det.pixel_size_mm / det.oversample;
    return det.origin_mm + det.fast_axis * ((sub_col + 0.5) * step_mm) +
           det.slow_axis * ((sub_row + 0.5) * step_mm);
}

void fill_subpixel_directions(const DetectorGeometry& det, double* out, int n_threads) {
    const int sub_rows = det.rows * det.oversample, sub_cols = det.cols * det.oversample;
#pragma omp parallel for schedule(static) num_threads(resolve_threads(n_threads))
    for (int r = 0; r < sub_rows; ++r) {
        for (int c = 0; c < sub_cols; ++c) {
            const Vec3 d = unit(subpixel_position_mm(det, r, c));
            double* o = out + 3 * (static_cast<long long>(r) * sub_cols + c);
            o[0] = d.x;
            o[1] = d.y;
            o[2] = d.z;
        }
    }
}

SubpixelDirections::SubpixelDirections(const DetectorGeometry& det, int n_threads) : data_(det.directions) {
    if (data_ != nullptr) return;
    owned_.resize(3 * static_cast<size_t>(det.rows) * det.oversample * det.cols * det.oversample);
    fill_subpixel_directions(det, owned_.data(), n_threads);
    data_ = owned_.data();
}

bool same_geometry(const DetectorGeometry& a, const DetectorGeometry& b) {
    return a.rows == b.rows && a.cols == b.cols && a.oversample == b.oversample &&
           a.pixel_size_mm == b.pixel_size_mm && a.origin_mm == b.origin_mm && a.fast_axis == b.fast_axis &&
           a.slow_axis == b.slow_axis && a.normal == b.normal;
}

double pixel_solid_angle_sr(const DetectorGeometry& det, const Vec3& position_mm) {
    const double r = norm(position_mm);
    const double obliquity = dot(position_mm, det.normal) / r;
    return det.pixel_size_mm * det.pixel_size_mm / (r * r) * obliquity;
}

}  // namespace diffranet
