# Managed by packer/scripts/20-ssh-hardening.sh: the template's SSH policy, scoped to SSH
# (OpenSSH and libssh); every other back-end keeps the base policy.
# %suppress_experimental_value_warnings=true
# No CBC ciphers.
cipher@SSH = -*-CBC
# MACs: SHA-2 and UMAC-128 only, encrypt-then-MAC only.
mac@SSH = -HMAC-SHA1 -HMAC-MD5 -UMAC-64
etm@SSH = DISABLE_NON_ETM
# Key exchange: no group on a NIST or Brainpool prime curve (ecdh-sha2-nistp*, and the
# P-256/P-384 ML-KEM hybrids), no finite-field group under 3072 bits (group14).
group@SSH = -*P[0-9]* -FFDHE-[12]*
hash@SSH = -SHA1 -MD5
sign@SSH = -*-SHA1
# %suppress_experimental_value_warnings=false
