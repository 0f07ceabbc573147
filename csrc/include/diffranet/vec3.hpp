// Small fixed-size vector and matrix types for the physics kernels.
// Plain aggregates so that they vectorise and copy freely; no magnitude
// hidden in element 0 (unlike nanoBragg's vectors).
#pragma once

#include <cmath>

namespace diffranet {

struct Vec3 {
    double x = 0.0, y = 0.0, z = 0.0;

    Vec3 operator+(const Vec3& o) const { return {x + o.x, y + o.y, z + o.z}; }
    Vec3 operator-(const Vec3& o) const { return {x - o.x, y - o.y, z - o.z}; }
    Vec3 operator*(double s) const { return {x * s, y * s, z * s}; }
    Vec3 operator/(double s) const { return {x / s, y / s, z / s}; }
    // exact: for "is this the geometry a cache was made for", not for numerical closeness
    bool operator==(const Vec3& o) const { return x == o.x && y == o.y && z == o.z; }
};

inline double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
    return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline Vec3 unit(const Vec3& a) { return a / norm(a); }

// Row-major 3x3 matrix: m[i][j] is row i, column j.
struct Mat3 {
    double m[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};

    Vec3 row(int i) const { return {m[i][0], m[i][1], m[i][2]}; }
    Vec3 col(int j) const { return {m[0][j], m[1][j], m[2][j]}; }
    Vec3 operator*(const Vec3& v) const {
        return {m[0][0] * v.x + m[0][1] * v.y + m[0][2] * v.z,
                m[1][0] * v.x + m[1][1] * v.y + m[1][2] * v.z,
                m[2][0] * v.x + m[2][1] * v.y + m[2][2] * v.z};
    }
    Mat3 operator*(const Mat3& o) const {
        Mat3 r;
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
                r.m[i][j] = m[i][0] * o.m[0][j] + m[i][1] * o.m[1][j] + m[i][2] * o.m[2][j];
        return r;
    }
    Mat3 transposed() const {
        Mat3 r;
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) r.m[i][j] = m[j][i];
        return r;
    }
};

Mat3 inverse(const Mat3& a);

// Rotation by |w| radians about the axis w/|w| (Rodrigues' formula).
Mat3 rotation_from_vector(const Vec3& w);

}  // namespace diffranet
