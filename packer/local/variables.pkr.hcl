# Variables of the local (QEMU) template. Three groups:
# - the OS identity and every value the OS var files (packer/os/*.pkrvars.hcl) set, declared
#   here too so that one var file serves both this template and packer/xcpng/;
# - what the harness's runner sets (vm_name, output_directory, run_id);
# - what the local platform's build_vars provides (base disk, build seed, accelerator, OVMF),
#   passed as PKR_VAR_* environment variables; they have no default on purpose: a build
#   without them fails at once naming the missing variable.

# The catalog applies an OS var file to this folder only for these families, and only when the
# var file sets every variable of required_os_variables: the base disk is an mmdebstrap root of
# a Debian suite (platforms/local/basedisk.py), so an OS without one cannot be built here and
# selecting it with --platform local is a usage error.
variable "supported_families" {
  type    = list(string)
  default = ["debian"]
}
variable "required_os_variables" {
  type    = list(string)
  default = ["local_base_suite", "local_kernel_package"]
}

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
  type    = list(string)
  default = []
}
variable "iso_checksum" {
  type    = string
  default = ""
}
variable "boot_command" {
  type    = list(string)
  default = []
}
variable "boot_command_suffix" {
  type    = list(string)
  default = []
}
variable "firmware" {
  # Production's choice; the local build always boots UEFI (OVMF).
  type    = string
  default = "uefi"
}
variable "boot_wait" {
  type    = string
  default = "10s"
}
variable "install_config_path" {
  type    = string
  default = ""
}
variable "cloudstack_os_type" {
  # CloudStack's OS type for this OS (a listOsTypes description), read by the registration in
  # CloudStack (docs/cloudstack.md); the build does not use it.
  type    = string
  default = ""
}
variable "xen_clone_template" {
  type    = string
  default = ""
}
variable "x86_64_level" {
  # Read by the XCP-ng platform's preflight only (QEMU runs -cpu max here).
  type    = number
  default = 1
}
variable "vm_memory_mb" {
  type    = number
  default = 2048
}
variable "vm_cpus" {
  type    = number
  default = 2
}
variable "guest_tools_source" {
  # Debian ships no Xen guest tools and this machine cannot fetch the XCP-ng tools ISO.
  type    = string
  default = "none"
}
variable "local_guest_tools_source" {
  type    = string
  default = "none"
}
variable "local_base_suite" {
  # The Debian suite of the base disk (bookworm, trixie); read by the local platform.
  type    = string
  default = ""
}
variable "local_kernel_package" {
  # The kernel package installed into the base disk; read by the local platform.
  type    = string
  default = ""
}

# --- set by the runner -------------------------------------------------------------------
variable "vm_name" {
  type    = string
  default = "template-local"
}
variable "output_directory" {
  type    = string
  default = "output-local"
}
variable "run_id" {
  type    = string
  default = "manual"
}

# --- set by the local platform (platforms/local, build_vars) --------------------------
variable "base_image" {
  type = string
}
variable "base_image_checksum" {
  type = string
}
variable "build_seed_image" {
  type = string
}
variable "ssh_username" {
  type = string
}
variable "ssh_private_key_file" {
  type = string
}
variable "qemu_accelerator" {
  type    = string
  default = "tcg"
}
variable "qemu_cpu" {
  type    = string
  default = "max"
}
variable "ovmf_code" {
  type    = string
  default = "/usr/share/OVMF/OVMF_CODE_4M.fd"
}
variable "ovmf_vars" {
  # A writable copy made per build: OVMF writes its boot entries there.
  type = string
}
variable "serial_log" {
  type    = string
  default = "/dev/null"
}
variable "ssh_timeout" {
  type    = string
  default = "30m"
}
