# Variables of the production (XCP-ng) template, shared by every OS: the per-OS values come
# from packer/os/<os_name>.pkrvars.hcl. No `supported_families` variable: it serves them all.
#
# The pool's host, credentials, SR and network have no default and are never written in a
# file: the harness's XCP-ng platform passes them as PKR_VAR_* environment variables.

# --- OS identity and the shared var file ---------------------------------------------
variable "os_name" {
  type = string
}
variable "os_family" {
  type = string
}
variable "os_version" {
  type = string
}
variable "disk_size_mb" {
  type    = number
  default = 8192
}
variable "iso_urls" {
  # The pinned point release; a second URL where it moves once superseded (archive folders).
  type = list(string)
}
variable "iso_checksum" {
  # A pinned value ("sha256:...") or the release's checksum file ("file:https://.../SHA256SUMS").
  type = string
}
variable "boot_command" {
  # Keys up to the kernel arguments; the template appends the build account and the suffix.
  type = list(string)
}
variable "boot_command_suffix" {
  type    = list(string)
  default = ["<enter>"]
}
variable "boot_wait" {
  type    = string
  default = "10s"
}
variable "install_config_path" {
  # The installer file under packer/http/, served by Packer's HTTP server; its first folder is
  # the installer family (debian: preseed, ubuntu: autoinstall user-data beside meta-data).
  type = string
}
variable "cloudstack_os_type" {
  # CloudStack's OS type for this OS (a listOsTypes description), read by the registration in
  # CloudStack (docs/cloudstack.md); the build does not use it.
  type    = string
  default = ""
}
variable "xen_clone_template" {
  type    = string
  default = "Other install media"
}
variable "firmware" {
  type    = string
  default = "bios"
}
variable "vm_memory_mb" {
  type    = number
  default = 2048
}
variable "vm_cpus" {
  type    = number
  default = 2
}
variable "x86_64_level" {
  # The x86-64 microarchitecture level the OS is built for (EL 9: 2, EL 10: 3). Packer does not
  # use it: the harness's preflight checks the pool's CPUs against it (platforms/xcpng/cpu.py).
  type    = number
  default = 1
}
variable "guest_tools_source" {
  # iso | package | xen-guest-agent | none, read by packer/scripts/40-xen-guest-tools.sh.
  type    = string
  default = "iso"
}
variable "xen_guest_agent_url" {
  # A .deb or .rpm of xen-guest-agent for OSes that do not package it (guest_tools_source =
  # "xen-guest-agent"); empty: the OS's own package. Passed to 40-xen-guest-tools.sh.
  type    = string
  default = ""
}
variable "local_guest_tools_source" {
  # Only used by packer/local; declared so one var file fits both folders.
  type    = string
  default = "none"
}
variable "local_base_suite" {
  # Only used by packer/local (its base disk); declared so one var file fits both folders.
  type    = string
  default = ""
}
variable "local_kernel_package" {
  type    = string
  default = ""
}

# --- set by the runner -------------------------------------------------------------------
variable "vm_name" {
  # Carries the run id, so a re-run never clashes with a leftover template (plugin #75, #110).
  type = string
}
variable "output_directory" {
  type = string
}
variable "run_id" {
  type = string
}
variable "run_created" {
  # Epoch seconds; with run_id and run_expires it tags the build VM, its disk and its ISO so
  # `python -m platforms.xcpng cleanup` finds them without the ledger (set by build_vars).
  type    = string
  default = "0"
}
variable "run_expires" {
  type    = string
  default = "0"
}

# --- set by the XCP-ng platform (build_vars), from XCPNG_* settings ------------------------
variable "remote_host" {
  type      = string
  sensitive = true
}
variable "remote_username" {
  type      = string
  sensitive = true
}
variable "remote_password" {
  type      = string
  sensitive = true
}
variable "sr_name" {
  type    = string
  default = ""
}
variable "sr_iso_name" {
  type    = string
  default = ""
}
variable "network_name" {
  type = string
}
variable "tools_iso_name" {
  # The XCP-ng guest tools ISO in the pool's ISO library (attached for 40-xen-guest-tools.sh).
  type    = string
  default = "guest-tools.iso"
}
variable "build_username" {
  # The installer creates it; 90-seal.sh deletes it at the end of the build.
  type    = string
  default = "packer"
}
variable "build_password" {
  # Random per build (platforms/xcpng build_vars), or PKR_VAR_build_password; typed at the
  # installer's boot prompt, so only letters, digits and ._+- (checked in preflight).
  type      = string
  sensitive = true
  validation {
    # The same rule as platforms/xcpng/build_password.py, which preflight applies first.
    condition     = can(regex("^[A-Za-z0-9._+-]{16,64}$", var.build_password))
    error_message = "The build_password must be 16 to 64 letters, digits or ._+- characters: it is typed over VNC at a boot prompt, where other characters are remapped or interpreted by the boot loader."
  }
}
variable "http_port_min" {
  # Packer's HTTP server (preseed, kickstart, autoinstall) listens on the runner on a port of
  # this range; the build VM must reach it (README: "First run on a pool").
  type    = number
  default = 8000
}
variable "http_port_max" {
  type    = number
  default = 8099
}

# --- waits, long on purpose (see the comments in xenserver.pkr.hcl) -----------------------
variable "ssh_wait_timeout" {
  type    = string
  default = "60m"
}
variable "install_timeout" {
  type    = string
  default = "90m"
}
