#!/bin/sh
# Regenerates the service-identity certificates of this example (seed 002: SPIFFE X509-SVIDs).
# The committed PEM files are the evidence; this script only documents how they were made.
# Fixed validity periods (openssl ca -startdate/-enddate) so the scenario does not depend on
# the day it is run. Private keys stay in a temporary directory and are never committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p newcerts && : > index.txt && echo 1000 > serial
cat > ca.cnf <<'CNF'
[ ca ]
default_ca = mesh_ca
[ mesh_ca ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
organizationName = optional
commonName = supplied
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ svid_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $ENV::SAN
authorityKeyIdentifier = keyid
CNF
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -new -key ca.key -subj "/O=example.org/CN=mesh-intermediate-ca cluster.local" -out ca.csr
SAN=URI:spiffe://cluster.local/ns/istio-system/sa/istiod \
openssl ca -batch -config ca.cnf -selfsign -keyfile ca.key -in ca.csr -extensions ca_ext \
  -startdate 20261101000000Z -enddate 20271101000000Z -notext -out ca.pem 2>/dev/null

leaf() { # namespace service-account not-after file
  openssl ecparam -name prime256v1 -genkey -noout -out "$2.key"
  openssl req -new -key "$2.key" -subj "/O=example.org/CN=$2.$1" -out "$2.csr"
  SAN="URI:spiffe://cluster.local/ns/$1/sa/$2, DNS:$2.$1.svc.cluster.local" \
  openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in "$2.csr" -extensions svid_ext \
    -startdate 20261115000000Z -enddate "$3" -notext -out "$2.pem" 2>/dev/null
  cat "$2.pem" ca.pem > "$here/$4"
}
leaf payments payment-service  20261215000000Z svid-payments-payment-service.pem
leaf payments refund-service   20261215000000Z svid-payments-refund-service.pem
leaf checkout checkout-service 20261215000000Z svid-checkout-checkout-service.pem
leaf checkout cart-service     20261215000000Z svid-checkout-cart-service.pem
leaf frontend frontend-web     20261215000000Z svid-frontend-frontend-web.pem
# The one that expires before the promotion checkpoint (2026-11-27T00:00:00Z):
leaf frontend frontend-bff     20261125000000Z svid-frontend-frontend-bff-2026-11-25.pem
# Its re-issue, valid past the checkpoint (the "all good" situation uses this one):
leaf frontend frontend-bff     20261215000000Z svid-frontend-frontend-bff.pem
cp ca.pem "$here/mesh-intermediate-ca.pem"
