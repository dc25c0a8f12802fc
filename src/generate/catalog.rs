//! Fixed tables the synthetic payer draws from: applications, teams, regions, instance
//! families with their normalization factors and prices, and the services lines belong to.

/// Application tag values; each commitment is used by two or three of them.
pub(crate) const APPS: [&str; 7] = [
    "checkout",
    "web-frontend",
    "search",
    "billing-api",
    "data-pipeline",
    "ml-training",
    "reporting",
];
/// Team tag values (`user_team`), present on tagged and untagged lines alike.
pub(crate) const TEAMS: [&str; 4] = ["payments", "web", "data", "platform"];
/// An AWS region with what CUR prints for it.
#[derive(Debug)]
pub(crate) struct Region {
    pub(crate) code: &'static str,
    pub(crate) location: &'static str,
    /// Prefix of usage types in this region (`us-east-1` has none).
    pub(crate) usage_prefix: &'static str,
}

/// The regions the synthetic payer runs in.
pub(crate) static REGIONS: [Region; 3] = [
    Region {
        code: "us-east-1",
        location: "US East (N. Virginia)",
        usage_prefix: "",
    },
    Region {
        code: "eu-west-1",
        location: "EU (Ireland)",
        usage_prefix: "EUW1-",
    },
    Region {
        code: "us-west-2",
        location: "US West (Oregon)",
        usage_prefix: "USW2-",
    },
];

/// An instance size: its name, normalization factor and on-demand hourly rate.
#[derive(Debug)]
pub(crate) struct Size {
    pub(crate) name: &'static str,
    pub(crate) factor: f64,
    pub(crate) od_rate: f64,
}

/// An instance family (sizes within it are interchangeable for size-flexible RIs).
#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) sizes: &'static [Size],
}

const fn size(name: &'static str, factor: f64, od_rate: f64) -> Size {
    Size {
        name,
        factor,
        od_rate,
    }
}

pub(crate) static M5: Family = Family {
    name: "m5",
    sizes: &[
        size("m5.large", 4.0, 0.096),
        size("m5.xlarge", 8.0, 0.192),
        size("m5.2xlarge", 16.0, 0.384),
        size("m5.4xlarge", 32.0, 0.768),
    ],
};
pub(crate) static C5: Family = Family {
    name: "c5",
    sizes: &[
        size("c5.large", 4.0, 0.085),
        size("c5.xlarge", 8.0, 0.17),
        size("c5.2xlarge", 16.0, 0.34),
    ],
};
pub(crate) static R5: Family = Family {
    name: "r5",
    sizes: &[
        size("r5.large", 4.0, 0.126),
        size("r5.xlarge", 8.0, 0.252),
        size("r5.2xlarge", 16.0, 0.504),
    ],
};
pub(crate) static T3: Family = Family {
    name: "t3",
    sizes: &[
        size("t3.nano", 0.25, 0.0052),
        size("t3.micro", 0.5, 0.0104),
        size("t3.small", 1.0, 0.0208),
        size("t3.medium", 2.0, 0.0416),
        size("t3.large", 4.0, 0.0832),
    ],
};
pub(crate) static DB_R5: Family = Family {
    name: "db.r5",
    sizes: &[
        size("db.r5.large", 4.0, 0.25),
        size("db.r5.xlarge", 8.0, 0.5),
    ],
};
/// Families that Savings Plans and on-demand usage draw from.
pub(crate) static EC2_FAMILIES: [&Family; 4] = [&M5, &C5, &R5, &T3];

/// A kind of usage as CUR describes it: service, product family, operation, unit, usage type.
#[derive(Debug)]
pub(crate) struct Service {
    /// `line_item_product_code` and `product_servicecode`.
    pub(crate) code: &'static str,
    /// `product_product_family`.
    pub(crate) family: &'static str,
    /// `line_item_operation`.
    pub(crate) operation: &'static str,
    /// `pricing_unit`.
    pub(crate) unit: &'static str,
    /// `line_item_usage_type` after the region prefix (`:<instance type>` follows if any).
    pub(crate) usage_type: &'static str,
    /// Prefix of `line_item_resource_id`, or `None` when lines name no resource.
    pub(crate) resource_prefix: Option<&'static str>,
    /// On-demand price per unit when no instance size says otherwise.
    pub(crate) rate: f64,
}

const fn service(
    code: &'static str,
    family: &'static str,
    operation: &'static str,
    unit: &'static str,
    usage_type: &'static str,
    resource_prefix: Option<&'static str>,
    rate: f64,
) -> Service {
    Service {
        code,
        family,
        operation,
        unit,
        usage_type,
        resource_prefix,
        rate,
    }
}

/// EC2 instance hours.
pub(crate) static EC2: Service = service(
    "AmazonEC2",
    "Compute Instance",
    "RunInstances",
    "Hrs",
    "BoxUsage",
    Some("i-"),
    0.0,
);
/// EC2 reservation fees.
pub(crate) static EC2_RI_FEE: Service = service(
    "AmazonEC2",
    "Compute Instance",
    "RunInstances",
    "Hrs",
    "HeavyUsage",
    None,
    0.0,
);
/// RDS instance hours.
pub(crate) static RDS: Service = service(
    "AmazonRDS",
    "Database Instance",
    "CreateDBInstance:0002",
    "Hrs",
    "InstanceUsage",
    Some("db-"),
    0.0,
);
/// RDS reservation fees.
pub(crate) static RDS_RI_FEE: Service = service(
    "AmazonRDS",
    "Database Instance",
    "CreateDBInstance:0002",
    "Hrs",
    "HeavyUsage",
    None,
    0.0,
);
/// Savings Plans hourly fees.
pub(crate) static SP_FEE: Service = service(
    "ComputeSavingsPlans",
    "Savings Plan",
    "",
    "Hrs",
    "ComputeSP:1yrNoUpfront",
    None,
    0.0,
);
/// S3 storage.
pub(crate) static S3: Service = service(
    "AmazonS3",
    "Storage",
    "StandardStorage",
    "GB-Mo",
    "TimedStorage-ByteHrs",
    Some("bucket-"),
    0.023,
);
/// Lambda compute.
pub(crate) static LAMBDA: Service = service(
    "AWSLambda",
    "Serverless",
    "Invoke",
    "Lambda-GB-Second",
    "Lambda-GB-Second",
    Some("function-"),
    0.0000166667,
);
/// CloudWatch metrics.
pub(crate) static CLOUDWATCH: Service = service(
    "AmazonCloudWatch",
    "Metric",
    "MetricStorage",
    "Metrics",
    "CW:MetricMonitorUsage",
    None,
    0.3,
);
/// Data transfer out.
pub(crate) static DATA_TRANSFER: Service = service(
    "AWSDataTransfer",
    "Data Transfer",
    "",
    "GB",
    "DataTransfer-Out-Bytes",
    None,
    0.09,
);
