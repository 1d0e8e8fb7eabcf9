"""Prepares a moto server for the RDS Proxy tests: a PostgreSQL RDS
instance, and prints the ids the config needs as JSON:
{"subnets": [...], "security_group": "...", "instance": "..."}.

Usage: moto_setup.py ENDPOINT_URL [INSTANCE_ID]
"""
import json
import sys

import boto3

endpoint = sys.argv[1]
instance = sys.argv[2] if len(sys.argv) > 2 else "qbo-mirror"
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
ec2 = boto3.client("ec2", **kw)
rds = boto3.client("rds", **kw)
vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
# Two subnets in different availability zones, as RDS Proxy wants.
by_zone = {}
for s in subnets:
    by_zone.setdefault(s["AvailabilityZone"], s["SubnetId"])
groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
rds.create_db_instance(DBInstanceIdentifier=instance, Engine="postgres", DBInstanceClass="db.t3.micro",
                       MasterUsername="postgres", MasterUserPassword="postgres-pw", AllocatedStorage=20)
print(json.dumps({"subnets": sorted(by_zone.values())[:2], "security_group": groups[0]["GroupId"], "instance": instance}))
