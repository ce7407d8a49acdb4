//! Blending two samples of a component, and `Transform`'s encoding.

use bevy::prelude::*;

/// A component shown between two samples of its owner's.
pub trait Interpolate {
    /// The value `t` of the way from `self` to `to`: 0 is `self`, 1 is `to`;
    /// above 1 when extrapolating past `to` (a linear blend continues the
    /// motion).
    fn interpolate(&self, to: &Self, t: f32) -> Self;
    /// How far apart two values are (the owner sends a new sample when
    /// receivers' extrapolation is off by more than its threshold in these
    /// units).
    fn distance(&self, other: &Self) -> f32;
}

impl Interpolate for f32 {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        self + (to - self) * t
    }
    fn distance(&self, other: &Self) -> f32 {
        (self - other).abs()
    }
}

impl Interpolate for Vec2 {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        *self + (*to - *self) * t
    }
    fn distance(&self, other: &Self) -> f32 {
        Vec2::distance(*self, *other)
    }
}

impl Interpolate for Vec3 {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        *self + (*to - *self) * t
    }
    fn distance(&self, other: &Self) -> f32 {
        Vec3::distance(*self, *other)
    }
}

/// Translation and scale blend linearly, rotation along the shortest arc;
/// the distance is the translation's plus the rotation's angle (radians) plus
/// the scale's change.
impl Interpolate for Transform {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        Transform {
            translation: self.translation.interpolate(&to.translation, t),
            rotation: self.rotation.slerp(to.rotation, t).normalize(),
            scale: self.scale.interpolate(&to.scale, t),
        }
    }
    fn distance(&self, other: &Self) -> f32 {
        self.translation.distance(other.translation)
            + self.rotation.angle_between(other.rotation)
            + self.scale.distance(other.scale)
    }
}

/// `Transform` as 10 little-endian `f32`: translation, rotation (x y z w), scale.
pub(crate) fn encode_transform(t: &Transform) -> Option<Vec<u8>> {
    let parts = [
        t.translation.x,
        t.translation.y,
        t.translation.z,
        t.rotation.x,
        t.rotation.y,
        t.rotation.z,
        t.rotation.w,
        t.scale.x,
        t.scale.y,
        t.scale.z,
    ];
    Some(parts.iter().flat_map(|f| f.to_le_bytes()).collect())
}

/// The inverse of [`encode_transform`]; `None` unless exactly 40 bytes of
/// finite numbers with a usable rotation.
pub(crate) fn decode_transform(bytes: &[u8]) -> Option<Transform> {
    if bytes.len() != 40 {
        return None;
    }
    let mut f = [0f32; 10];
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        f[i] = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    if f.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let rotation = Quat::from_xyzw(f[3], f[4], f[5], f[6]);
    if rotation.length_squared() < 1e-6 {
        return None;
    }
    Some(Transform {
        translation: Vec3::new(f[0], f[1], f[2]),
        rotation: rotation.normalize(),
        scale: Vec3::new(f[7], f[8], f[9]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_round_trip_blend_and_refuse_garbage() {
        let a = Transform::from_xyz(1.0, 2.0, 3.0).with_rotation(Quat::from_rotation_z(0.5));
        let bytes = encode_transform(&a).expect("encodes");
        assert_eq!(decode_transform(&bytes), Some(a));
        assert_eq!(decode_transform(&bytes[..39]), None);
        let mut nan = bytes.clone();
        nan[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(decode_transform(&nan), None);
        let b = Transform::from_xyz(3.0, 2.0, 3.0).with_rotation(Quat::from_rotation_z(0.5));
        let half = a.interpolate(&b, 0.5);
        assert!((half.translation.x - 2.0).abs() < 1e-6);
        let past = a.interpolate(&b, 1.5);
        assert!((past.translation.x - 4.0).abs() < 1e-5);
        assert!((a.distance(&b) - 2.0).abs() < 1e-5);
    }
}
