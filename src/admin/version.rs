//! RocketMQ client versions as mqadmin prints them: the wire carries the ordinal of the Java
//! client's `MQVersion.Version` enum (V5_5_0 is 513); this gives its name.

/// The enum's first names, before the regular run of `<version>_SNAPSHOT, <version>` pairs.
const FIRST: [&str; 16] = [
    "V3_0_0_SNAPSHOT",
    "V3_0_0_ALPHA1",
    "V3_0_0_BETA1",
    "V3_0_0_BETA2",
    "V3_0_0_BETA3",
    "V3_0_0_BETA4",
    "V3_0_0_BETA5",
    "V3_0_0_BETA6_SNAPSHOT",
    "V3_0_0_BETA6",
    "V3_0_0_BETA7_SNAPSHOT",
    "V3_0_0_BETA7",
    "V3_0_0_BETA8_SNAPSHOT",
    "V3_0_0_BETA8",
    "V3_0_0_BETA9_SNAPSHOT",
    "V3_0_0_BETA9",
    "V3_0_0_FINAL",
];

/// The patch numbers the enum lists for a major.minor, in order.
fn patches(major: u32, minor: u32) -> std::ops::RangeInclusive<u32> {
    match (major, minor) {
        (3, 0) => 1..=15,
        (3, 1 | 2) => 0..=9,
        (3, _) => 1..=9,
        _ => 0..=9,
    }
}

/// `MQVersion.getVersionDesc`: the name of version `ordinal`, `HIGHER_VERSION` past the last
/// one the enum lists (V5_9_9), and the number itself when it is negative.
pub fn version_desc(ordinal: i64) -> String {
    let Ok(mut left) = usize::try_from(ordinal) else {
        return ordinal.to_string();
    };
    if let Some(name) = FIRST.get(left) {
        return (*name).to_string();
    }
    left -= FIRST.len();
    for major in 3..=5 {
        for minor in 0..=9 {
            for patch in patches(major, minor) {
                match left {
                    0 => return format!("V{major}_{minor}_{patch}_SNAPSHOT"),
                    1 => return format!("V{major}_{minor}_{patch}"),
                    _ => left -= 2,
                }
            }
        }
    }
    "HIGHER_VERSION".to_string()
}

/// The version in a JSON field (`"version": 513`), named.
pub fn json_version_desc(value: &serde_json::Value) -> String {
    value
        .as_i64()
        .map_or_else(|| value.to_string(), version_desc)
}

#[cfg(test)]
mod tests {
    use super::version_desc;

    #[test]
    fn ordinals_name_the_versions_of_the_java_enum() {
        assert_eq!(version_desc(0), "V3_0_0_SNAPSHOT");
        assert_eq!(version_desc(15), "V3_0_0_FINAL");
        assert_eq!(version_desc(17), "V3_0_1");
        assert_eq!(version_desc(212), "V4_0_0_SNAPSHOT");
        assert_eq!(version_desc(213), "V4_0_0");
        assert_eq!(version_desc(513), "V5_5_0");
        assert_eq!(version_desc(514), "V5_5_1_SNAPSHOT");
        assert_eq!(version_desc(611), "V5_9_9");
        assert_eq!(version_desc(612), "HIGHER_VERSION");
        assert_eq!(version_desc(-1), "-1");
    }
}
