/* transmute.c: the command-line tool's entry point and subcommand dispatch. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "Usage: transmute COMMAND [OPTIONS] [ARGS]\n"
    "       transmute --help | --version\n"
    "\n"
    "Runs GAN image-to-image generators (CycleGAN ResNet, pix2pix U-Net, StarGAN)\n"
    "stored as safetensors files, on a Vulkan device or on the CPU.\n"
    "\n"
    "Commands:\n"
    "  translate   translate images with a model\n"
    "  info        show what a model file holds\n"
    "  convert     turn a PyTorch checkpoint (.pth, .ckpt) or a TF.js model.json\n"
    "              into a model\n"
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

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "translate", cmd_translate },
    { "info", cmd_info },
    { "convert", cmd_convert },
    { "devices", cmd_devices },
};

static int run_command(const char *name, int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc, argv);
    cli_usage_error(NULL, "unknown command '%s'", name);
}

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
            return run_command(argv[2], 2, sub);
        }
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("transmute %s\n", TRANSMUTE_VERSION);
        return EXIT_OK;
    }
    if (cmd[0] == '-')
        cli_usage_error(NULL, "unknown option '%s' (options go after the command)", cmd);
    return run_command(cmd, argc - 1, argv + 1);
}
