/* transmute.c: the command-line tool's entry point and subcommand dispatch. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "Usage: transmute COMMAND [OPTIONS] [ARGS]\n"
    "       transmute --help | --version\n"
    "\n"
    "Runs GAN image-to-image generators (CycleGAN ResNet, pix2pix U-Net) stored\n"
    "as safetensors files, on a Vulkan device or on the CPU.\n"
    "\n"
    "Commands:\n"
    "  translate   translate images with a model\n"
    "  info        show what a model file holds\n"
    "  devices     list the CPU backend and the Vulkan devices\n"
    "\n"
    "Run 'transmute COMMAND --help' for a command's options.\n"
    "\n"
    "Environment:\n"
    "  TRANSMUTE_DEVICE     device to use when --device is not given\n"
    "  TRANSMUTE_VALIDATE   1: enable the Vulkan validation layer; any validation\n"
    "                       message then makes the tool exit with status 3\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 bad command line, 3 Vulkan validation\n"
    "messages (with TRANSMUTE_VALIDATE=1), 130 interrupted.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (!strcmp(cmd, "help") && argc > 2) {
            /* "transmute help translate" == "transmute translate --help" */
            char *sub[] = {argv[2], "--help", NULL};
            if (!strcmp(argv[2], "translate"))
                return cmd_translate(2, sub);
            if (!strcmp(argv[2], "info"))
                return cmd_info(2, sub);
            if (!strcmp(argv[2], "devices"))
                return cmd_devices(2, sub);
            cli_usage_error(NULL, "unknown command '%s'", argv[2]);
        }
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("transmute %s\n", TRANSMUTE_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "translate"))
        return cmd_translate(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "devices"))
        return cmd_devices(argc - 1, argv + 1);
    if (cmd[0] == '-')
        cli_usage_error(NULL, "unknown option '%s' (options go after the command)", cmd);
    cli_usage_error(NULL, "unknown command '%s'", cmd);
}
