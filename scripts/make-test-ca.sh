#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A certificate authority and host certificates for godwitd's TLS, with the openssl command line:
# for tests and for trying godwit out. A production CA is the operator's own (docs/operator-guide.md).
set -eu

usage() {
	cat <<EOF
Usage: make-test-ca.sh DIR ca [--days N]
       make-test-ca.sh DIR host NAME SANS [--days N] [--ca CANAME]
Makes, in DIR:
  ca              ca.pem and ca-key.pem: a CA (P-256, valid N days, default 365)
  host NAME SANS  NAME.pem and NAME-key.pem: a certificate signed by DIR/CANAME.pem
                  (default ca) for server and client use (godwitd serves with it and
                  presents it to other godwitd). SANS: comma-separated subject alternative
                  names, e.g. IP:10.0.0.5,DNS:host5.example. --days -1 makes one that has
                  already expired (for tests).
Keys are written mode 0600.
EOF
}

[ $# -ge 2 ] || { usage >&2; exit 2; }
case "$1" in -h | --help) usage; exit 0 ;; esac
dir=$1 what=$2
shift 2
command -v openssl >/dev/null || { echo "make-test-ca.sh: openssl not found (apt install openssl)" >&2; exit 1; }
mkdir -p "$dir"
umask 077

days=365 ca=ca name="" sans=""
if [ "$what" = host ]; then
	[ $# -ge 2 ] || { usage >&2; exit 2; }
	name=$1 sans=$2
	shift 2
fi
while [ $# -gt 0 ]; do
	case "$1" in
	--days) days=$2; shift 2 ;;
	--ca) ca=$2; shift 2 ;;
	*) usage >&2; exit 2 ;;
	esac
done

case "$what" in
ca)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$ca-key.pem" -out "$dir/$ca.pem" -days "$days" \
		-subj "/CN=godwit test CA $ca" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		2>/dev/null
	;;
host)
	[ -f "$dir/$ca.pem" ] || { echo "make-test-ca.sh: no CA $dir/$ca.pem: make it first" >&2; exit 1; }
	ext=$(mktemp)
	trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' \
		"$sans" >"$ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$name-key.pem" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.pem" -CAkey "$dir/$ca-key.pem" \
		-CAcreateserial -out "$dir/$name.pem" -days "$days" -extfile "$ext" 2>/dev/null
	chmod 644 "$dir/$name.pem"
	;;
*)
	usage >&2
	exit 2
	;;
esac
chmod 644 "$dir/$ca.pem"
