#include "diffranet/vec3.hpp"

namespace diffranet {

Mat3 inverse(const Mat3& a) {
    const auto& m = a.m;
    const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                       m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                       m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    Mat3 r;
    r.m[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det;
    r.m[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det;
    r.m[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det;
    r.m[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det;
    r.m[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det;
    r.m[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det;
    r.m[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det;
    r.m[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det;
    r.m[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det;
    return r;
}

Mat3 rotation_from_vector(const Vec3& w) {
    const double angle = norm(w);
    Mat3 r;
    if (angle == 0.0) return r;
    const Vec3 k = w / angle;
    const double c = std::cos(angle), s = std::sin(angle), t = 1.0 - c;
    r.m[0][0] = c + k.x * k.x * t;
    r.m[0][1] = k.x * k.y * t - k.z * s;
    r.m[0][2] = k.x * k.z * t + k.y * s;
    r.m[1][0] = k.y * k.x * t + k.z * s;
    r.m[1][1] = c + k.y * k.y * t;
    r.m[1][2] = k.y * k.z * t - k.x * s;
    r.m[2][0] = k.z * k.x * t - k.y * s;
    r.m[2][1] = k.z * k.y * t + k.x * s;
    r.m[2][2] = c + k.z * k.z * t;
    return r;
}

}  // namespace diffranet
